// Hallmark moderator console: keyboard shortcuts (no inline script: the CSP forbids it).
// j / k: next / previous row of the queue (or the next / previous item link on a report)
// o or Enter: open the selected row; n: lease the next item to review; v: reveal the preview
// a / r: decide allow / remove; u: back to the queue; ?: this help; Esc: close the help.
(function () {
  "use strict";
  var current = -1;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-row]"));
  }

  function select(i) {
    var r = rows();
    if (r.length === 0) {
      return false;
    }
    current = Math.max(0, Math.min(r.length - 1, i));
    r.forEach(function (row, j) {
      row.classList.toggle("selected", j === current);
    });
    var link = r[current].querySelector("a");
    if (link) {
      link.focus();
    }
    return true;
  }

  function click(key) {
    var el = document.querySelector('[data-key="' + key + '"]');
    if (el) {
      el.click();
      return true;
    }
    return false;
  }

  function toggleHelp(show) {
    var help = document.getElementById("help");
    if (help) {
      help.hidden = show === undefined ? !help.hidden : !show;
    }
    return true;
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) {
      return;
    }
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) {
      return;
    }
    var handled = false;
    switch (e.key) {
      case "j":
        handled = select(current + 1) || click("j");
        break;
      case "k":
        handled = select(current - 1) || click("k");
        break;
      case "o":
        if (current >= 0 && rows()[current]) {
          var link = rows()[current].querySelector("a");
          if (link) {
            link.click();
            handled = true;
          }
        }
        break;
      case "n":
      case "v":
      case "a":
      case "r":
      case "u":
        handled = click(e.key);
        break;
      case "?":
        handled = toggleHelp();
        break;
      case "Escape":
        handled = toggleHelp(false);
        break;
      default:
        break;
    }
    if (handled) {
      e.preventDefault();
    }
  });
})();
