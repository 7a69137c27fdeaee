// The API explorer at /docs: sends each operation's request with the
// credential in the key bar and prints the response. The credential is
// kept in this tab's sessionStorage only.
(function () {
  var keyInput = document.getElementById('explorer-key');
  keyInput.value = sessionStorage.getItem('gatehouse-explorer-key') || '';
  keyInput.addEventListener('change', function () { sessionStorage.setItem('gatehouse-explorer-key', keyInput.value); });

  var sandbox = document.getElementById('sandbox-key');
  if (sandbox) {
    sandbox.addEventListener('click', function () {
      sandbox.disabled = true;
      fetch('/dashboard/explorer-key', { method: 'POST', credentials: 'same-origin' })
        .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
        .then(function (d) {
          keyInput.value = d.key;
          sessionStorage.setItem('gatehouse-explorer-key', d.key);
          sandbox.textContent = 'Sandbox key ready (until ' + d.expires_at + ')';
        })
        .catch(function (e) { sandbox.disabled = false; sandbox.textContent = 'Could not create a key: ' + e.message; });
    });
  }

  document.querySelectorAll('form.try').forEach(function (form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var op = form.closest('section.op');
      var path = op.getAttribute('data-path');
      var query = new URLSearchParams();
      form.querySelectorAll('[data-param]').forEach(function (input) {
        var name = input.getAttribute('data-param');
        if (input.getAttribute('data-in') === 'path') {
          path = path.replace('{' + name + '}', encodeURIComponent(input.value));
        } else if (input.value !== '') {
          query.set(name, input.value);
        }
      });
      var qs = query.toString();
      var init = { method: op.getAttribute('data-method'), headers: { 'Accept': 'application/json' }, credentials: 'omit' };
      if (keyInput.value) init.headers['Authorization'] = 'Bearer ' + keyInput.value;
      var body = form.querySelector('[data-body]');
      if (body) { init.body = body.value; init.headers['Content-Type'] = 'application/json'; }
      var out = form.querySelector('pre.out');
      out.hidden = false;
      out.textContent = 'Sending…';
      fetch(path + (qs ? '?' + qs : ''), init).then(function (r) {
        var head = r.status + ' ' + r.statusText + '\n';
        ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'X-Pagination-Total-Entries', 'Link', 'X-Request-Id'].forEach(function (h) {
          if (r.headers.get(h)) head += h + ': ' + r.headers.get(h) + '\n';
        });
        return r.text().then(function (t) {
          try { t = JSON.stringify(JSON.parse(t), null, 2); } catch (e) { /* not JSON */ }
          out.textContent = head + '\n' + t;
          out.setAttribute('data-status', String(r.status));
        });
      }).catch(function (e) { out.textContent = 'Request failed: ' + e.message; });
    });
  });
})();
