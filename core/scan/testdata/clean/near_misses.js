/* A theme script: an iframe for an embed, a script loaded from the site's own CDN. */
(function () {
  var frame = document.createElement('iframe');
  frame.src = 'https://www.youtube.com/embed/abc';
  frame.width = 560;
  frame.height = 315;
  document.body.appendChild(frame);
  var s = document.createElement('script');
  s.src = 'https://cdn.example.com/theme.js';
  document.head.appendChild(s);
  var label = String.fromCharCode(65, 66);
  document.title = decodeURIComponent('caf%C3%A9') + label;
})();
