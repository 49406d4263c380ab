/* The success page: polls (the page's own ?partial=1 fragment, rendered by the server) until the
 * order is finished, and turns on the copy buttons. Without this script the page has a Refresh link. */
(function () {
  "use strict";
  var root = document.getElementById("order");
  if (!root) { return; }
  var finished = ["delivered", "failed", "cancelled", "refunded", "partially_refunded", "needs_attention"];

  function announce(text) {
    var status = document.getElementById("copy-status");
    if (status) { status.textContent = ""; setTimeout(function () { status.textContent = text; }, 50); }
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function copied(button, ok) {
    var label = button.textContent;
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    announce(ok ? "Copied to the clipboard" : "Select the code and copy it");
    setTimeout(function () { button.textContent = label === "Copied" ? "Copy" : label; }, 2000);
  }

  function wireCopyButtons() {
    var buttons = root.querySelectorAll("button.copy");
    Array.prototype.forEach.call(buttons, function (button) {
      if (button.dataset.wired) { return; }
      button.dataset.wired = "1";
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = button.dataset.copy;
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(function () { copied(button, true); },
                                                   function () { copied(button, fallbackCopy(text)); });
        } else {
          copied(button, fallbackCopy(text));
        }
      });
    });
  }

  wireCopyButtons();
  var body = document.getElementById("order-body");
  if (!body || finished.indexOf(body.dataset.status) !== -1) { return; }
  var delay = 1000, tries = 0;

  function poll() {
    tries += 1;
    fetch(root.dataset.pollUrl, { headers: { "Accept": "text/html" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#order-body");
        var current = document.getElementById("order-body");
        if (fresh && current && fresh.innerHTML !== current.innerHTML) {
          current.replaceWith(fresh);
          root.dataset.status = fresh.dataset.status;
          wireCopyButtons();
        }
        var now = document.getElementById("order-body").dataset.status;
        if (finished.indexOf(now) === -1 && tries < 300) { setTimeout(poll, delay); delay = Math.min(delay * 1.3, 5000); }
      })
      .catch(function () { if (tries < 300) { setTimeout(poll, 3000); } });
  }
  setTimeout(poll, 800);
})();
