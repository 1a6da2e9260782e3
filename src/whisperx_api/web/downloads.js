// Download links, shared by the page's two panels (a job's transcript, live captions): each
// document is offered as a blob: URL named for its format, and the blobs offered before are freed.
"use strict";

window.whisperxDownloads = Object.freeze({
  // The links with ids `${prefix}${format}`. `offer(documents, base)` points each at a blob of
  // `documents[format].body` (of type `documents[format].type`), saved as `${base}.${format}`.
  links(prefix) {
    let urls = [];
    return Object.freeze({
      offer(documents, base) {
        urls.forEach((url) => URL.revokeObjectURL(url));
        urls = Object.entries(documents).map(([format, doc]) => {
          const url = URL.createObjectURL(new Blob([doc.body], { type: `${doc.type};charset=utf-8` }));
          const link = document.getElementById(`${prefix}${format}`);
          link.href = url;
          link.download = `${base}.${format}`;
          return url;
        });
      },
    });
  },
});
