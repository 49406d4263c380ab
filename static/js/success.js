/* The success page. htmx (vendored, see the template) polls the order's fragment until the order is
 * finished; this script turns on the copy buttons and tells screen readers when the order moves on.
 * Without JavaScript the page has a Refresh link and the codes can be selected by hand. */
(function () {
  "use strict";
  var root = document.getElementById("order");
  if (!root) { return; }

  function announce(id, text) {
    var region = document.getElementById(id);
    if (!region) { return; }
    region.textContent = "";
    setTimeout(function () { region.textContent = text; }, 50);
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
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    announce("copy-status", ok ? "Copied to the clipboard" : "Select the code and copy it");
    setTimeout(function () { button.textContent = label; }, 2000);
  }

  function showCopyButtons() {
    Array.prototype.forEach.call(root.querySelectorAll("button.copy"), function (button) { button.hidden = false; });
  }

  // One listener for every copy button, including those in fragments swapped in later.
  root.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy") : null;
    if (!button) { return; }
    var text = button.dataset.copy;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button, true); },
                                               function () { copied(button, fallbackCopy(text)); });
    } else {
      copied(button, fallbackCopy(text));
    }
  });

  document.body.addEventListener("htmx:afterSwap", function () {
    showCopyButtons();
    var headline = document.getElementById("headline");
    if (headline) { announce("order-announce", headline.textContent); }
  });

  showCopyButtons();
})();
