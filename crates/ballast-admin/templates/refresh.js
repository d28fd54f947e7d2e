// Reloads the page every data-refresh seconds while the tab is visible and no form field has
// focus (so typing a silence comment is never interrupted). `?refresh=0` turns it off.
(function () {
  var secs = Number(document.body.dataset.refresh || 0);
  if (!secs || /[?&]refresh=0\b/.test(location.search)) return;
  setInterval(function () {
    var f = document.activeElement;
    var typing = f && (f.tagName === "INPUT" || f.tagName === "TEXTAREA" || f.tagName === "SELECT");
    if (!document.hidden && !typing) location.reload();
  }, secs * 1000);
})();
