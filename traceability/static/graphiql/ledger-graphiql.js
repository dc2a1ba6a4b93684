// GraphiQL's start-up, from a file: the Content-Security-Policy runs no inline script. Queries go
// to this page's own URL with the session's cookie and its CSRF token (the cookie itself is
// HttpOnly, so the token is read from the form field the page carries). A link may carry a query
// and its variables after "#" (#query=…&variables=…), to share a question with a colleague.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var csrf = root.querySelector("[name=csrfmiddlewaretoken]");
  var shared = new URLSearchParams(window.location.hash.slice(1));
  var fetcher = GraphiQL.createFetcher({
    url: root.getAttribute("data-endpoint"),
    headers: csrf ? { "X-CSRFToken": csrf.value } : {},
  });
  ReactDOM.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      query: shared.get("query") || undefined,
      variables: shared.get("variables") || undefined,
    }),
    root
  );
})();
