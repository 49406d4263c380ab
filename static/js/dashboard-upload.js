/* The seller dashboard's few behaviours, vanilla and vendored (no CDN, no build step).
 *
 * - File inputs with data-upload-url upload with XMLHttpRequest (session + CSRF), show the size and
 *   a progress bar, then put the returned storage reference in the hidden field named by data-target.
 * - The code pool's CSV form (data-codes-upload) posts with XMLHttpRequest and a progress bar, then
 *   shows the import report and the new counts. Without JavaScript the form posts normally.
 * - Forms with data-confirm ask first; the server asks again on a page of its own when they did not
 *   (it looks for confirm=yes), so a destructive action always confirms.
 * - The product form: "Add another variant", the delivery type's own fields, "Other…" currency.
 */
(function () {
  "use strict";

  function humanSize(bytes) {
    var units = ["bytes", "KB", "MB", "GB"];
    var value = bytes;
    for (var i = 0; i < units.length; i++) {
      if (value < 1024 || i === units.length - 1) {
        return i === 0 ? value + " bytes" : value.toFixed(1) + " " + units[i];
      }
      value = value / 1024;
    }
    return bytes + " bytes";
  }

  function csrfToken(scope) {
    var field = (scope || document).querySelector("input[name=csrfmiddlewaretoken]") ||
      document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  // One XMLHttpRequest with upload progress; calls done(ok, envelope or null, status).
  function send(url, formData, token, onProgress, done) {
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", token);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) { onProgress(Math.round((event.loaded / event.total) * 100)); }
    };
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      // Signed out meanwhile: the request was redirected to the sign-in page.
      var status = !body && /\/accounts\/login\//.test(xhr.responseURL || "") ? 403 : xhr.status;
      done(status >= 200 && status < 300 && body && body.success, body, status);
    };
    xhr.onerror = function () { done(false, null, 0); };
    xhr.send(formData);
  }

  function errorMessage(body, status) {
    if (body && body.error) {
      var fields = body.error.fields || {};
      var first = Object.keys(fields)[0];
      return (first && fields[first][0]) || body.error.message;
    }
    if (status === 0) { return "The upload did not reach the server. Check your connection and try again."; }
    if (status === 403) { return "Your session has expired. Reload the page and sign in again."; }
    if (status === 413) { return "The file is too large."; }
    return "The upload failed (HTTP " + status + "). Please try again.";
  }

  // --- Product file upload ----------------------------------------------------------------------

  document.querySelectorAll("input[type=file][data-upload-url]").forEach(function (input) {
    var target = document.getElementById(input.dataset.target);
    // Each file input has its own progress bar and status line: ids "<prefix>-progress" etc.
    var prefix = input.dataset.uploadPrefix || "upload";
    var progress = document.getElementById(prefix + "-progress");
    var percent = document.getElementById(prefix + "-percent");
    var status = document.getElementById(prefix + "-status");
    var field = input.closest(".field");
    var save = document.getElementById("save-product");
    var maxBytes = parseInt(input.dataset.maxBytes || "0", 10);

    function showError(message) {
      var error = field.querySelector(".upload-error");
      if (!error) {
        error = document.createElement("p");
        error.className = "error field-error upload-error";
        error.setAttribute("data-testid", "error-upload");
        field.appendChild(error);
      }
      error.textContent = message;
      error.hidden = !message;
    }

    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) { return; }
      showError("");
      if (maxBytes && file.size > maxBytes) {
        showError(file.name + " is " + humanSize(file.size) + ", over the limit of " + humanSize(maxBytes) + ".");
        return;
      }
      var data = new FormData();
      data.append("file", file);
      progress.hidden = false;
      progress.value = 0;
      status.textContent = "Uploading " + file.name + " (" + humanSize(file.size) + ")…";
      if (save) { save.disabled = true; }
      send(input.dataset.uploadUrl, data, csrfToken(input.form), function (value) {
        progress.value = value;
        percent.textContent = value + "%";
      }, function (ok, body, code) {
        if (save) { save.disabled = false; }
        if (!ok) {
          progress.hidden = true;
          percent.textContent = "";
          status.textContent = "";
          showError(errorMessage(body, code));
          return;
        }
        progress.value = 100;
        percent.textContent = "100%";
        target.value = body.data.url;
        status.textContent = "";
        var strong = document.createElement("strong");
        strong.textContent = body.data.filename;
        status.append("Uploaded ", strong, " (" + humanSize(body.data.size) + "). Save the product to use it.");
        field.classList.remove("has-error");
        field.querySelectorAll(".field-error").forEach(function (el) { if (!el.classList.contains("upload-error")) { el.remove(); } });
      });
    });
  });

  // --- Code pool CSV upload --------------------------------------------------------------------

  function renderReport(box, data) {
    box.textContent = "";
    var heading = document.createElement("h3");
    heading.textContent = "Import report";
    var summary = document.createElement("p");
    function part(value, key, text) {
      var strong = document.createElement("strong");
      strong.setAttribute("data-report", key);
      strong.textContent = String(value);
      summary.append(strong, " " + text);
    }
    part(data.imported, "imported", "imported · ");
    part(data.duplicates, "duplicates", (data.duplicates === 1 ? "duplicate" : "duplicates") + " skipped · ");
    part(data.rejected_count, "rejected", (data.rejected_count === 1 ? "line" : "lines") + " rejected");
    box.append(heading, summary);
    if (data.rejected && data.rejected.length) {
      var table = document.createElement("table");
      table.className = "rejected";
      var head = table.createTHead().insertRow();
      ["Line", "Reason"].forEach(function (name) {
        var th = document.createElement("th");
        th.scope = "col";
        th.textContent = name;
        head.appendChild(th);
      });
      var tbody = table.createTBody();
      data.rejected.forEach(function (row) {
        var tr = tbody.insertRow();
        tr.insertCell().textContent = String(row.line);
        tr.insertCell().textContent = row.reason;
      });
      box.appendChild(table);
      if (data.rejected_count > data.rejected.length) {
        var more = document.createElement("p");
        more.className = "muted small";
        more.textContent = "Only the first " + data.rejected.length + " rejected lines are listed.";
        box.appendChild(more);
      }
    }
    box.hidden = false;
  }

  // The list below the form, as the server renders it now (the new codes are in it).
  function refreshList() {
    var list = document.getElementById("code-list");
    if (!list || !window.fetch || !window.DOMParser) { return; }
    fetch(window.location.pathname + window.location.search, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("code-list");
        if (fresh) { list.replaceWith(fresh); }
      })
      .catch(function () { /* the counts and the report are already shown; a reload shows the list */ });
  }

  document.querySelectorAll("form[data-codes-upload]").forEach(function (form) {
    var input = form.querySelector("input[type=file]");
    var progress = document.getElementById("codes-progress");
    var percent = document.getElementById("codes-percent");
    var error = document.getElementById("codes-upload-error");
    var button = document.getElementById("codes-upload-button");
    var report = document.getElementById("import-report");

    function showError(message) {
      error.textContent = message;
      error.hidden = !message;
      form.querySelector(".field").classList.toggle("has-error", !!message);
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = input.files && input.files[0];
      if (!file) { showError("Choose a CSV file first."); return; }
      showError("");
      var data = new FormData(form);
      progress.hidden = false;
      progress.value = 0;
      percent.textContent = "Uploading " + file.name + " (" + humanSize(file.size) + ")…";
      button.disabled = true;
      send(form.action, data, csrfToken(form), function (value) {
        progress.value = value;
        percent.textContent = value < 100 ? value + "% of " + humanSize(file.size) : "Importing…";
      }, function (ok, body, code) {
        button.disabled = false;
        progress.hidden = true;
        if (!ok) {
          percent.textContent = "";
          showError(errorMessage(body, code));
          return;
        }
        percent.textContent = "Done.";
        var result = body.data;
        Object.keys(result.counts).forEach(function (status) {
          document.querySelectorAll('[data-count="' + status + '"]').forEach(function (el) {
            el.textContent = String(result.counts[status]);
          });
        });
        document.querySelectorAll('[data-count="total"]').forEach(function (el) { el.textContent = String(result.total); });
        document.querySelectorAll('[data-count="sellable"]').forEach(function (el) { el.textContent = String(result.sellable); });
        renderReport(report, result);
        form.reset();
        if (result.imported) { refreshList(); }
      });
    });
  });

  // --- Confirmations ---------------------------------------------------------------------------

  // Delegated, so that forms added later (a refreshed list) ask too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) { return; }
    if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); return; }
    if (!form.querySelector("input[name=confirm]")) {
      var yes = document.createElement("input");
      yes.type = "hidden";
      yes.name = "confirm";
      yes.value = "yes";
      form.appendChild(yes);
    }
  });

  // --- The product form ------------------------------------------------------------------------

  var addVariant = document.querySelector("[data-add-variant]");
  var template = document.getElementById("variant-template");
  var rows = document.getElementById("variant-rows");
  var total = document.getElementById("id_variants-TOTAL_FORMS");
  if (addVariant && template && rows && total) {
    addVariant.hidden = false;
    addVariant.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      var body = document.createElement("tbody");
      body.innerHTML = html;
      var row = body.firstElementChild;
      rows.appendChild(row);
      total.value = String(index + 1);
      var name = row.querySelector("input[name$='-name']");
      if (name) { name.focus(); }
      applyDelivery();
    });
  }

  var deliverySelect = document.getElementById("id_delivery_type");
  function applyDelivery() {
    if (!deliverySelect) { return; }
    var kind = deliverySelect.value;
    document.querySelectorAll("[data-delivery]").forEach(function (section) {
      section.hidden = section.dataset.delivery !== kind;
    });
    document.querySelectorAll("[data-delivery-note]").forEach(function (note) {
      note.hidden = note.dataset.deliveryNote !== kind;
    });
    document.querySelectorAll(".stock-col").forEach(function (cell) {
      cell.hidden = kind === "code_pool";
    });
  }
  if (deliverySelect) {
    deliverySelect.addEventListener("change", applyDelivery);
    applyDelivery();
  }

  var currency = document.getElementById("id_currency");
  var other = document.querySelector("[data-currency-other]");
  if (currency && other) {
    var applyCurrency = function () {
      other.hidden = currency.value !== "other";
      if (!other.hidden && document.activeElement === currency) {
        var input = other.querySelector("input");
        if (input) { input.focus(); }
      }
    };
    currency.addEventListener("change", applyCurrency);
    applyCurrency();
  }
})();
