// The console's types for the manager's answers, generated from the schema both sides
// share (docs/formats/api.schema.json): `node tools/schema-types.mjs` writes
// src/api-types.ts; with --check it only fails (exit 1) when that file is not what the
// schema gives, which `npm run check` and the build do, so the console's types cannot
// drift from the schema unnoticed (tests/integration/api_schema_check.py holds the
// manager to the same schema).
// Covers the schema's own vocabulary: $ref, enum, anyOf, type (one or a list with
// "null"), properties, required, additionalProperties, items, description.
import { readFileSync, writeFileSync } from "node:fs";

const here = new URL("..", import.meta.url);
const schemaUrl = new URL("../docs/formats/api.schema.json", here);
const outUrl = new URL("src/api-types.ts", here);

function typeOf(node, indent) {
  if (node.$ref) return node.$ref.replace("#/$defs/", "");
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (node.anyOf) return node.anyOf.map((n) => typeOf(n, indent)).join(" | ");
  const types = Array.isArray(node.type) ? node.type : node.type ? [node.type] : [];
  if (!types.length) return node.properties ? objectOf(node, indent) : "unknown";
  return types
    .map((t) => {
      switch (t) {
        case "null":
          return "null";
        case "string":
          return "string";
        case "integer":
        case "number":
          return "number";
        case "boolean":
          return "boolean";
        case "array":
          return `${wrap(typeOf(node.items ?? {}, indent))}[]`;
        case "object":
          return objectOf(node, indent);
        default:
          throw new Error(`unsupported type ${t}`);
      }
    })
    .join(" | ");
}

function wrap(type) {
  return /[ |]/.test(type) && !type.startsWith("{") ? `(${type})` : type;
}

function doc(node, indent) {
  return node.description ? `${indent}/** ${node.description} */\n` : "";
}

function objectOf(node, indent) {
  const inner = `${indent}  `;
  const required = new Set(node.required ?? []);
  let out = "{\n";
  for (const [name, prop] of Object.entries(node.properties ?? {})) {
    const key = /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : JSON.stringify(name);
    out += doc(prop, inner) + `${inner}${key}${required.has(name) ? "" : "?"}: ${typeOf(prop, inner)};\n`;
  }
  // An open object (an agent's event, a root as its hello described it) keeps the rest.
  if (node.additionalProperties !== false) out += `${inner}[field: string]: unknown;\n`;
  return `${out}${indent}}`;
}

function generate(schema) {
  let out =
    "// Generated from docs/formats/api.schema.json by web/tools/schema-types.mjs: do not edit,\n" +
    "// change the schema and run `node tools/schema-types.mjs` in web/.\n";
  for (const [name, node] of Object.entries(schema.$defs)) {
    out += "\n" + doc(node, "");
    const type = typeOf(node, "");
    out += type.startsWith("{") ? `export interface ${name} ${type}\n` : `export type ${name} = ${type};\n`;
  }
  return out;
}

const wanted = generate(JSON.parse(readFileSync(schemaUrl, "utf8")));
if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(outUrl, "utf8");
  } catch {
    // missing: stale
  }
  if (current !== wanted) {
    console.error("web/src/api-types.ts is not what docs/formats/api.schema.json gives: run `node tools/schema-types.mjs` in web/");
    process.exit(1);
  }
} else {
  writeFileSync(outUrl, wanted);
}
