// The finding form: shows the fields of the subject kind chosen (all of them are there without
// JavaScript, and those of another kind are ignored), and puts an offered lot or unit in the field.
(function () {
  "use strict";
  function start() {
    var form = document.getElementById("finding");
    if (!form) { return; }
    var subject = document.getElementById("id_subject");
    function show() {
      var checked = form.querySelector('input[name="subject_kind"]:checked');
      var kind = checked ? checked.value : "item";
      form.querySelectorAll("[data-kind-fields]").forEach(function (fields) {
        fields.hidden = fields.getAttribute("data-kind-fields").split(" ").indexOf(kind) < 0;
      });
    }
    form.addEventListener("change", function (event) {
      if (event.target.name === "subject_kind") { show(); }
    });
    form.addEventListener("click", function (event) {
      var offer = event.target.closest("button[data-subject]");
      if (!offer || !subject) { return; }
      subject.value = offer.getAttribute("data-subject");
      var offers = document.getElementById("subject-offers");
      if (offers) { offers.replaceChildren(); }
      subject.focus();
    });
    show();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
