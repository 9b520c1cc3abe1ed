// The API reference: docs/openapi.yaml, bundled at build time, in Swagger UI.
// "Try it out" calls the servers the document lists (the local stack first);
// paste a token from `make token` under "Authorize".
import "swagger-ui-dist/swagger-ui.css";
import SwaggerUI from "swagger-ui-dist/swagger-ui-es-bundle.js";
import { parse } from "yaml";
import document from "../../docs/openapi.yaml?raw";

SwaggerUI({
  dom_id: "#swagger-ui",
  spec: parse(document) as object,
  deepLinking: true,
  persistAuthorization: false,
});
