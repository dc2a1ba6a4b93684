// GraphiQL's start-up, from a file: the Content-Security-Policy runs no inline script. Queries go
// to this page's own URL with the session's cookie and its CSRF token (the cookie itself is
// HttpOnly, so the token is read from the form field the page carries).
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var csrf = root.querySelector("[name=csrfmiddlewaretoken]");
  var fetcher = GraphiQL.createFetcher({
    url: root.getAttribute("data-endpoint"),
    headers: csrf ? { "X-CSRFToken": csrf.value } : {},
  });
  ReactDOM.render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultEditorToolsVisibility: true }),
    root
  );
})();
