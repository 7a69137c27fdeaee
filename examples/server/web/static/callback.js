// Shows the access token of an implicit-grant redirect, which arrives in
// the URL fragment (never sent to the server).
(function () {
  var params = new URLSearchParams(window.location.hash.slice(1));
  var token = params.get('access_token');
  if (token) {
    document.getElementById('fragment-token').textContent = token;
    document.getElementById('fragment').hidden = false;
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
})();
