// Independent reference (viem, from tests/interop/node_modules): ABI-encode a User Review, hash and sign EAS
// Attest typed data. stdin: {schema, values, typedData, privateKey}; stdout: {encoded, digest, signature}.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "interop", "package.json"));
const viem = require("viem");
const { privateKeyToAccount } = require("viem/accounts");

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { schema, values, typedData, privateKey } = JSON.parse(input);

const params = viem.parseAbiParameters(schema);
const [subject, version, rating, body, shots, proofs] = values;
const encoded = viem.encodeAbiParameters(params, [subject, version, BigInt(rating), body, shots, proofs]);

const { EIP712Domain, ...types } = typedData.types;
const message = { ...typedData.message };
for (const k of ["expirationTime", "value", "nonce", "deadline"]) message[k] = BigInt(message[k]);
const domain = { ...typedData.domain, chainId: BigInt(typedData.domain.chainId) };
const args = { domain, types, primaryType: typedData.primaryType, message };
const digest = viem.hashTypedData(args);
const signature = await privateKeyToAccount(privateKey).signTypedData(args);
process.stdout.write(JSON.stringify({ encoded, digest, signature }));
