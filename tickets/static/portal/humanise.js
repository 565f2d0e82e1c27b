// Times in words, by the rule of tickets/humanise.py (`duration`, `relative`, `sla_due`): round down, to the
// two largest units (days and h, h and min, or min), leaving out a smaller unit that is zero. The server
// writes these words into each <time>; this module keeps them current in the page. A test runs both on one
// table (tests/tickets/test_humanise.py), so the page never says one thing and the server another.

const UNITS = [["day", "days", 86400000], ["h", "h", 3600000], ["min", "min", 60000]];
const MINUTE = 60000;

// A number and its unit never part at a line break: a no-break space, as on the server.
function unit(count, singular, plural) {
  return `${count}\u00a0${count === 1 ? singular : plural}`;
}

// A span in milliseconds, in words, at minute resolution: "3 h 20 min", "2 days", "less than a minute".
export function duration(milliseconds) {
  const total = Math.abs(milliseconds);
  for (let index = 0; index < UNITS.length; index += 1) {
    const [singular, plural, size] = UNITS[index];
    if (total < size) continue;
    let text = unit(Math.floor(total / size), singular, plural);
    const smaller = UNITS[index + 1];
    if (smaller) {
      const rest = Math.floor((total % size) / smaller[2]);
      if (rest) text += ` ${unit(rest, smaller[0], smaller[1])}`;
    }
    return text;
  }
  return "less than a minute";
}

// "3 h 20 min ago", "in 2 days", "just now".
export function relative(date, now = Date.now()) {
  const delta = date.getTime() - now;
  if (Math.abs(delta) < MINUTE) return delta > 0 ? "in less than a minute" : "just now";
  return delta > 0 ? `in ${duration(delta)}` : `${duration(delta)} ago`;
}

// An SLA due time: "due in 3 h 20 min", "overdue by 20 min" (at the due time itself: overdue).
export function slaDue(date, now = Date.now()) {
  const delta = date.getTime() - now;
  return delta > 0 ? `due in ${duration(delta)}` : `overdue by ${duration(delta)}`;
}

// A file's size by the rule of humanise.py `file_size`: "112 bytes", "1.5 KB", "12 KB", "3.2 MB".
export function fileSize(size) {
  if (size < 1024) return unit(size, "byte", "bytes");
  let value = size / 1024;
  let index = 0;
  while (value >= 1024 && index < 2) { value /= 1024; index += 1; }
  const shown = value < 10 ? (Math.floor(value * 10) / 10).toFixed(1) : String(Math.floor(value));
  return `${shown}\u00a0${["KB", "MB", "GB"][index]}`;
}
