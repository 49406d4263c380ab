// The dashboard's behaviour, from a static file (the Content-Security-Policy runs no inline script).
// Destructive actions confirm first (the server checks again); copy buttons copy a secret.
(function () {
  "use strict";

  function confirmOnSubmit(form, message) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(message())) { event.preventDefault(); }
    });
  }

  // A fixed question: <form data-confirm="...">.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    confirmOnSubmit(form, function () { return form.getAttribute("data-confirm"); });
  });

  // An order's status change names the move chosen.
  var statusForm = document.getElementById("status-form");
  if (statusForm) {
    confirmOnSubmit(statusForm, function () {
      var select = statusForm.elements.namedItem("status");
      var option = select.options[select.selectedIndex];
      return "Change the status of order #" + statusForm.getAttribute("data-order-number") + " from " +
        statusForm.getAttribute("data-status-label") + " to " + option.text + "?" +
        (option.value === "cancelled" ? " Its reserved codes are released." : "") +
        (option.value === "delivered" ? " Every item counts as delivered." : "");
    });
  }

  // A refund names the amount typed, or the whole remainder.
  var refundForm = document.getElementById("refund-form");
  if (refundForm) {
    confirmOnSubmit(refundForm, function () {
      var typed = refundForm.elements.namedItem("amount").value.trim().replace(/,/g, "");
      var amount = typed;
      var currency = refundForm.getAttribute("data-currency");
      // The amount typed in major units, written as money ("29" → "$29.00"), as the server will.
      if (typed && currency && /^\d+(\.\d*)?$|^\.\d+$/.test(typed)) {
        try {
          amount = new Intl.NumberFormat("en-US", { style: "currency", currency: currency }).format(Number(typed));
        } catch (e) { amount = typed + " " + currency; }
      } else if (typed && currency) { amount = typed + " " + currency; }
      return "Refund " + (amount || "the whole remaining " + refundForm.getAttribute("data-refundable")) +
        " to the buyer? This cannot be undone.";
    });
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = document.querySelector(button.getAttribute("data-copy")).textContent.trim();
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done); }
      else {
        var area = document.createElement("textarea"); area.value = text; document.body.appendChild(area);
        area.select(); document.execCommand("copy"); document.body.removeChild(area); done();
      }
    });
  });
})();
