/* The checkout page's live total: asks the public quote endpoint as the buyer types (debounced)
 * and shows the discount, the total, and a refused code's reason next to the field.
 * The page works without this script: the form posts the same fields and the server recomputes. */
(function () {
  "use strict";
  var form = document.getElementById("checkout-form");
  if (!form || !window.fetch) { return; }
  var currency = form.dataset.currency;
  var digits = parseInt(form.dataset.exponent || "2", 10);
  var formatter;
  try {
    formatter = new Intl.NumberFormat("en-US", { style: "currency", currency: currency,
      minimumFractionDigits: digits, maximumFractionDigits: digits });
  } catch (e) { formatter = null; }

  function money(minor) {
    var value = minor / Math.pow(10, digits);
    if (!formatter) { return currency + " " + value.toFixed(digits); }
    // Babel (the server) writes "UGX50,000"; Intl writes "UGX 50,000": keep them alike.
    return formatter.format(value).replace(/^([A-Z]{3})\s/, "$1");
  }
  function byId(id) { return document.getElementById(id); }
  function show(el, text) { if (!el) { return; } el.textContent = text || ""; el.hidden = !text; }

  var discount = byId("id_discount_code");
  var quantity = byId("id_quantity");
  var seq = 0, timer = null;

  function chosenVariant() {
    var checked = form.querySelector('input[name="variant_id"]:checked');
    if (checked) { return checked.value; }
    var hidden = form.querySelector('input[type="hidden"][name="variant_id"]');
    return hidden ? hidden.value : "";
  }

  function render(quote) {
    show(byId("summary-subtotal"), money(quote.subtotal));
    var row = byId("summary-discount-row");
    if (quote.discount_amount) {
      byId("summary-discount").textContent = "\u2212" + money(quote.discount_amount);
      row.hidden = false;
      show(byId("id_discount_code-ok"), "Code " + quote.discount_code + " applied: \u2212" + money(quote.discount_amount));
    } else {
      row.hidden = true;
      show(byId("id_discount_code-ok"), "");
    }
    byId("summary-total").textContent = money(quote.total_amount);
    var pay = byId("pay-amount");
    if (pay) { pay.textContent = money(quote.total_amount); }
    // A total of 0 is claimed without a payment step: the button says so.
    var free = quote.total_amount === 0;
    var label = byId("pay-label");
    if (label) { label.textContent = free ? "Get it free" : "Pay"; }
    if (pay) { pay.hidden = free; }
  }

  function setFieldError(name, text) {
    var el = byId("id_" + name + "-error");
    var input = byId("id_" + name);
    show(el, text);
    if (input) { if (text) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); } }
  }

  function ask(code) {
    var mine = ++seq;
    var qty = parseInt(quantity.value, 10);
    if (!(qty >= 1)) { return; }
    var body = { variant_id: chosenVariant(), quantity: qty, discount_code: code };
    fetch(form.dataset.quoteUrl, { method: "POST", headers: { "Content-Type": "application/json", "Accept": "application/json" },
                                   body: JSON.stringify(body), credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); })
      .then(function (res) {
        if (mine !== seq) { return; } // a newer question is on its way
        if (res.body.success) {
          if (code || !discount.value.trim()) { setFieldError("discount_code", ""); }
          setFieldError("quantity", "");
          render(res.body.data);
          return;
        }
        var error = res.body.error || {};
        var fields = error.fields || {};
        if (error.code === "invalid_discount") {
          setFieldError("discount_code", (fields.discount_code || [error.message]).join(" "));
          ask(""); // still show the total without the code
        } else if (error.code === "out_of_stock") {
          setFieldError("quantity", error.message); // "Only 3 left of Standard.", before the buyer pays
        } else if (fields.quantity || fields["items.0.quantity"]) {
          setFieldError("quantity", (fields.quantity || fields["items.0.quantity"]).join(" "));
        }
      })
      .catch(function () { /* offline: the server checks everything when the buyer pays */ });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(function () { ask(discount.value.trim()); }, 350);
  }

  discount.addEventListener("input", later);
  quantity.addEventListener("input", later);
  form.addEventListener("change", function (e) { if (e.target.name === "variant_id") { later(); } });
  var apply = byId("apply-discount");
  if (apply) {
    apply.addEventListener("click", function (e) { e.preventDefault(); clearTimeout(timer); ask(discount.value.trim()); });
  }
  discount.addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); clearTimeout(timer); ask(discount.value.trim()); }
  });
  // A second click while the first submit is on its way would only replay the same order (same
  // idempotency key); disabling the button says so.
  form.addEventListener("submit", function (e) {
    var pay = byId("pay");
    if (e.submitter && e.submitter.id === "pay") { setTimeout(function () { pay.disabled = true; pay.setAttribute("aria-busy", "true"); }, 0); }
  });
  if (discount.value.trim()) { later(); }
})();
