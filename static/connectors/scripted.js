// Runs in <head>, before the page is drawn: marks it as scripted, so controls that only work
// with JavaScript (Copy buttons, the detail page's tabs) show, and their no-script stand-ins
// (every section shown, extra empty key/value rows) step aside. Without JavaScript the class is
// never set and the page works as plain HTML.
document.documentElement.classList.add("cc-js");
