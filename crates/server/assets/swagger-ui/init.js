// sqdata: the vendored Swagger UI (npm swagger-ui-dist 5.35.0) pointed at
// the served document; no request leaves this server.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "../openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    withCredentials: false
  });
};
