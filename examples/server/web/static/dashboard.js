// Copy buttons and confirmations of the Gatehouse dashboard (no inline
// script: the pages' CSP allows only this file and explorer.js).
document.addEventListener('click', function (ev) {
  var copy = ev.target.closest('[data-copy]');
  if (copy) {
    var text = document.getElementById(copy.getAttribute('data-copy')).textContent;
    var done = function () { copy.textContent = 'Copied'; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(copy); });
    } else {
      selectText(copy);
    }
    return;
  }
  var confirmEl = ev.target.closest('[data-confirm]');
  if (confirmEl && !window.confirm(confirmEl.getAttribute('data-confirm'))) {
    ev.preventDefault();
  }
  if (ev.target.closest('[data-back]')) {
    ev.preventDefault();
    history.back();
  }
});

function selectText(button) {
  var code = document.getElementById(button.getAttribute('data-copy'));
  var range = document.createRange();
  range.selectNodeContents(code);
  var sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  button.textContent = 'Selected: press Ctrl+C';
}
