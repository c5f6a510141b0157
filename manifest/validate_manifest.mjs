#!/usr/bin/env node
// Validates a Teams app manifest (and the files it references) offline, against the schemas
// bundled in the npm package @microsoft/app-manifest.
//
//   node manifest/validate_manifest.mjs path/to/manifest.json
//
// Checks:
//   - the manifest with AppManifestUtils.validateAgainstSchema(manifest, schema), the schema
//     being the bundled file its "$schema" names; a schema the package does not bundle is an
//     error, never fetched (fetch is disabled in this process);
//   - that "$schema" and manifestVersion agree;
//   - every localization file listed in localizationInfo against the bundled localization
//     schema of the same manifest version (see validateLocalization);
//   - that the icon and localization files the manifest names exist next to it.
//
// Exit codes: 0 valid; 1 invalid, including an unbundled schema (problems on stderr);
// 2 usage or setup error (package not installed, unreadable file).

import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import Module, { createRequire } from "node:module";

const PACKAGE = "@microsoft/app-manifest";
const SCHEMA_PREFIX = "https://developer.microsoft.com/json-schemas/teams/";

function setupError(message) {
  console.error(`validate_manifest: ${message}`);
  process.exit(2);
}

// @microsoft/app-manifest 1.1.2 requires "fs-extra" at load time but lists it only under
// devDependencies, so a plain `npm install` lacks it. When it cannot be resolved, serve the
// few functions the package uses from node:fs. (Validation with an explicit schema, as
// below, does not touch the file system through it at all.)
function provideFsExtraIfMissing(packageRoot) {
  const fromPackage = createRequire(path.join(packageRoot, "build", "index.js"));
  try {
    fromPackage.resolve("fs-extra");
    return;
  } catch {
    // fall through: install the fallback
  }
  const shimId = path.join(packageRoot, "__fs-extra-fallback__.js");
  const shim = {
    ...fs,
    readFile: fs.promises.readFile,
    writeFile: fs.promises.writeFile,
    pathExists: (file) => fs.promises.access(file).then(() => true, () => false),
    writeJson: (file, data, options = {}) =>
      fs.promises.writeFile(file, JSON.stringify(data, null, options.spaces) + "\n", "utf8"),
  };
  const module = new Module(shimId);
  module.filename = shimId;
  module.loaded = true;
  module.exports = shim;
  Module._cache[shimId] = module;
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function resolveWithFallback(request, ...rest) {
    return request === "fs-extra" ? shimId : resolve.call(this, request, ...rest);
  };
}

// Resolve the package from this script's directory upwards (the repository's node_modules),
// then from the current directory (an installed copy of the script run inside a checkout).
function loadPackage() {
  const bases = [import.meta.url, path.join(process.cwd(), "noop.js")];
  for (const base of bases) {
    const require = createRequire(base);
    let root;
    try {
      root = path.dirname(require.resolve(`${PACKAGE}/package.json`));
    } catch {
      continue; // try the next base
    }
    provideFsExtraIfMissing(root);
    try {
      return { lib: require(PACKAGE), root };
    } catch (err) {
      return setupError(`cannot load ${PACKAGE} from ${root}: ${err.message}`);
    }
  }
  return setupError(
    `${PACKAGE} is not installed (looked in node_modules above ${path.dirname(
      new URL(import.meta.url).pathname,
    )} and ${process.cwd()}). Run \`npm install\` in the project directory.`,
  );
}

function readJson(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    return setupError(`cannot read ${file}: ${err.message}`);
  }
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (err) {
    // Not JSON at all: that is an invalid manifest, not a setup problem.
    console.error(`${file}: not valid JSON: ${err.message}`);
    process.exit(1);
  }
}

// Map a schema URL to the file the package bundles, without any network access.
function bundledSchema(packageRoot, schemaUrl, file) {
  if (typeof schemaUrl !== "string" || !schemaUrl.startsWith(SCHEMA_PREFIX)) {
    console.error(`${file}: "$schema" must start with ${SCHEMA_PREFIX}, got ${JSON.stringify(schemaUrl)}`);
    process.exit(1);
  }
  const relative = schemaUrl.slice(SCHEMA_PREFIX.length);
  if (!/^v[0-9A-Za-z.]+\/[A-Za-z.]+\.schema\.json$/.test(relative)) {
    console.error(`${file}: unexpected schema URL ${schemaUrl}`);
    process.exit(1);
  }
  const schemaFile = path.join(packageRoot, "build", "json-schemas", "teams", relative);
  if (!fs.existsSync(schemaFile)) {
    console.error(
      `${file}: schema ${schemaUrl} is not bundled in ${PACKAGE}; ` +
        "use a manifest version the package bundles (validation runs offline only).",
    );
    process.exit(1);
  }
  const raw = fs.readFileSync(schemaFile, "utf8");
  // Same clean-up the package applies to schema text (invalid JSON escapes in some versions).
  return JSON.parse(raw.replace(/\\a/g, "\\u0007").replace(/\\v/g, "\\u000b"));
}

// The bundled localization schemas (every version up to v1.30) hold a pattern, `…\b]\.description$`,
// that is valid only as a non-Unicode regular expression; AppManifestUtils.validateAgainstSchema
// compiles with Unicode regular expressions and throws on it. Localization files are therefore
// checked against the same bundled schema with the package's own Ajv (draft-04) set up like
// validateAgainstSchema except for `unicodeRegExp: false`.
function validateLocalization(packageRoot, strings, schema) {
  const fromPackage = createRequire(path.join(packageRoot, "build", "index.js"));
  const AjvDraft04 = fromPackage("ajv-draft-04").default ?? fromPackage("ajv-draft-04");
  const addFormats = fromPackage("ajv-formats").default ?? fromPackage("ajv-formats");
  const ajv = new AjvDraft04({ allErrors: true, strictTypes: false, unicodeRegExp: false });
  addFormats(ajv, ["uri", "email", "regex"]);
  const validate = ajv.compile(schema);
  if (validate(strings)) return [];
  return (validate.errors ?? []).map(
    (error) => `${error.instancePath} ${error.message ?? ""}. Details: ${JSON.stringify(error.params ?? {})}`,
  );
}

function schemaVersion(schemaUrl) {
  const match = /\/teams\/(v[^/]+)\//.exec(String(schemaUrl));
  return match ? match[1] : undefined;
}

// Offline only: any attempt to fetch (a schema) fails loudly instead of reaching the network.
globalThis.fetch = async (url) => {
  throw new Error(`network access is disabled in validate_manifest.mjs (tried ${url})`);
};

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 1 || args[0].startsWith("-")) {
    setupError("usage: node validate_manifest.mjs path/to/manifest.json");
  }
  const manifestFile = path.resolve(args[0]);
  const manifestDir = path.dirname(manifestFile);
  const manifestName = path.basename(manifestFile);
  const { lib, root } = loadPackage();
  const utils = lib.AppManifestUtils;
  if (!utils || typeof utils.validateAgainstSchema !== "function") {
    setupError(`${PACKAGE} does not export AppManifestUtils.validateAgainstSchema`);
  }

  const errors = [];
  const manifest = readJson(manifestFile);
  if (manifest === null || typeof manifest !== "object" || Array.isArray(manifest)) {
    console.error(`${manifestFile}: a manifest must be a JSON object`);
    process.exit(1);
  }
  const schema = bundledSchema(root, manifest.$schema, manifestFile);
  for (const failure of await utils.validateAgainstSchema(manifest, schema)) {
    errors.push(`${manifestName}: ${failure}`);
  }

  const version = schemaVersion(manifest.$schema);
  const expectedVersion = `v${manifest.manifestVersion}`;
  if (version !== expectedVersion) {
    errors.push(`${manifestName}: "$schema" is ${version} but manifestVersion is ${manifest.manifestVersion}`);
  }

  const referenced = [];
  for (const key of ["color", "outline", "color32x32"]) {
    const icon = manifest.icons?.[key];
    if (typeof icon === "string") referenced.push([`icons.${key}`, icon]);
  }
  const languages = manifest.localizationInfo?.additionalLanguages ?? [];
  for (const [index, language] of languages.entries()) {
    if (typeof language?.file === "string") {
      referenced.push([`localizationInfo.additionalLanguages[${index}].file`, language.file]);
    }
  }
  for (const [field, relative] of referenced) {
    const target = path.resolve(manifestDir, relative);
    if (path.dirname(target) !== manifestDir) {
      errors.push(`${manifestName}: ${field} must name a file at the package root, got ${relative}`);
    } else if (!fs.existsSync(target)) {
      errors.push(`${manifestName}: ${field} names ${relative}, which is missing`);
    }
  }

  for (const language of languages) {
    if (typeof language?.file !== "string") continue;
    const file = path.resolve(manifestDir, language.file);
    if (path.dirname(file) !== manifestDir || !fs.existsSync(file)) continue;
    const strings = readJson(file);
    const localizationSchema = bundledSchema(root, strings.$schema, file);
    for (const failure of validateLocalization(root, strings, localizationSchema)) {
      errors.push(`${language.file}: ${failure}`);
    }
    if (schemaVersion(strings.$schema) !== expectedVersion) {
      errors.push(
        `${language.file}: "$schema" is ${schemaVersion(strings.$schema)} but the manifest is ${expectedVersion}`,
      );
    }
  }

  if (errors.length > 0) {
    console.error(`${manifestFile}: ${errors.length} problem(s)`);
    for (const error of errors) console.error(`  - ${error}`);
    process.exit(1);
  }
  console.log(`${manifestFile}: valid (Teams manifest ${manifest.manifestVersion}, ${PACKAGE}, offline)`);
}

main().catch((err) => setupError(err?.stack ?? String(err)));
