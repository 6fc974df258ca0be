// Times in the browser's own time zone, for an account whose profile names none: the
// server writes them in UTC with an ISO <time datetime>, and this rewrites what is shown.
// Without a script the UTC times stay, and the note above them says so.
(function () {
  var lang = document.documentElement.lang || undefined;
  var format = new Intl.DateTimeFormat(lang, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23"
  });
  document.querySelectorAll("time.js-local-time").forEach(function (time) {
    var when = new Date(time.getAttribute("datetime"));
    if (!isNaN(when)) { time.textContent = format.format(when); }
  });
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll(".js-zone-note").forEach(function (note) {
    if (zone) { note.textContent = note.dataset.browserZone + " " + zone + "."; }
  });
})();
