"""Keyfob's date formats, one per language (FORMAT_MODULE_PATH): every date on a page reads
the same way, as notices write them (audit.notices.WHEN_FORMAT), and as localtime.js
rewrites times into the browser's zone: the day, the month's full name, the year, the time
on 24 hours. No abbreviation, so no full stop of its own before a sentence's, and no
all-digit date an English or American reader would take the other way round."""
