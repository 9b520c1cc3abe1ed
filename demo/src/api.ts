// The API reference: docs/openapi.yaml, bundled at build time, in Swagger UI.
// "Try it out" calls the servers the document lists (the local stack first);
// paste a token from `make token` under "Authorize".
import "swagger-ui-dist/swagger-ui.css";
import SwaggerUI from "swagger-ui-dist/swagger-ui-es-bundle.js";
import { parse } from "yaml";
import document from "../../docs/openapi.yaml?raw";

let spec: object | null = null;
try {
  spec = parse(document) as object;
} catch (error) {
  // A broken document shows as what it is, not as an empty page.
  const message = Object.assign(window.document.createElement("pre"), {
    textContent: `docs/openapi.yaml is not valid YAML:\n${(error as Error).message}`,
  });
  message.dataset.testid = "api-error";
  window.document.getElementById("swagger-ui")!.replaceWith(message);
}
if (spec) SwaggerUI({ dom_id: "#swagger-ui", spec, deepLinking: true, persistAuthorization: false });
