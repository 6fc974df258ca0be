// Times in the browser's own time zone, for an account whose profile names none: the
// server writes them in UTC with an ISO <time datetime>, and this rewrites what is shown.
// Without a script the UTC times stay, and the note above them says so.
//
// Written as the server writes every date (keyfob/site/formats: "6 December 2026, 12:56",
// the month by its name in the page's language, the time on 24 hours), whatever the
// browser's own convention: one way per page, never an all-digit date read the other way.
(function () {
  var lang = document.documentElement.lang || undefined;
  var format = new Intl.DateTimeFormat(lang, {
    year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23"
  });
  function written(when) {
    var parts = {};
    format.formatToParts(when).forEach(function (part) { parts[part.type] = part.value; });
    return parts.day + " " + parts.month + " " + parts.year + ", " + parts.hour + ":" +
      parts.minute;
  }
  document.querySelectorAll("time.js-local-time").forEach(function (time) {
    var when = new Date(time.getAttribute("datetime"));
    if (!isNaN(when)) { time.textContent = written(when); }
  });
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll(".js-zone-note").forEach(function (note) {
    if (zone) { note.textContent = note.dataset.browserZone + " " + zone + "."; }
  });
})();
