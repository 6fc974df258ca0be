// "Print" needs a script; without one the button stays hidden and "Download" remains.
document.querySelectorAll(".js-print").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
