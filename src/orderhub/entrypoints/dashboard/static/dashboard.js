// Progressive enhancement only: every page works without this file.
// A filter <select data-autosubmit> applies as soon as it changes, saving a click.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form) { select.form.requestSubmit(); }
    });
  });
});
