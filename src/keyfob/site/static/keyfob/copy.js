// "Copy" puts the text of a list (one item a line) on the clipboard; without a script the
// button stays hidden and "Download" remains. A file of the site's own, as the
// Content-Security-Policy allows no inline script.
document.querySelectorAll(".js-copy").forEach(function (button) {
  var source = document.querySelector(button.dataset.copy);
  var status = document.querySelector(".js-copied");
  if (!source || !navigator.clipboard) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    var lines = Array.prototype.map.call(source.querySelectorAll("li"), function (item) {
      return item.textContent.trim();
    });
    navigator.clipboard.writeText(lines.join("\n") + "\n").then(
      function () { if (status) { status.textContent = status.dataset.copied; } },
      function () { if (status) { status.textContent = status.dataset.failed; } }
    );
  });
});
