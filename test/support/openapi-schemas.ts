/**
 * The OpenAPI document's schemas compiled with Ajv, as clients generated from it would read them:
 * a component schema by name, and a GET route's 200 answer by path.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { openapi } from '../../src/adapters/http/openapi.ts';

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
/** The document with its references rooted at `doc`, the one id its schemas are added under. */
export const doc = JSON.parse(JSON.stringify(openapi).replaceAll('"#/components/', '"doc#/components/')) as {
  components: { schemas: Record<string, { required?: string[] }> };
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content: Record<string, { schema: object }> }> }>
  >;
};
ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');

/** The validator of a component schema (`Contact`, `Agent`, ...). */
export const componentValidator = (name: string) => ajv.compile({ $ref: `doc#/components/schemas/${name}` });

/** A GET route's 200 JSON answer schema (`/v1/workspaces/{ws}/events`), as the document has it. */
export const getAnswerSchema = (path: string): { required?: string[] } =>
  doc.paths[path]!.get!.responses['200']!.content['application/json']!.schema;

/** The validator of a GET route's 200 JSON answer. */
export const getAnswerValidator = (path: string) => ajv.compile(getAnswerSchema(path));
