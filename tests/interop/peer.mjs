// Test peer: the published x402 TypeScript SDK (@x402/extensions/offer-receipt), driven over stdin/stdout JSON.
//
//   node peer.mjs create  < {"specs": [spec, ...], "hosts"?: {...}}          → {"artifacts": [...]}
//   node peer.mjs verify  < {"artifacts": [item, ...], "hosts"?: {...}}      → {"results": [...]}
//   node peer.mjs bench   < {"artifacts": [item, ...], "n": N, "hosts"?: {...}} → {"results": [...]}
//   node peer.mjs digest  < {"artifacts": [item, ...]}                       → {"digests": ["0x…" | null]}
//
// Only the SDK's public API is used to create and verify artifacts. Everything else here is test plumbing:
// building signers from key material, pinning the clock (the SDK stamps issuedAt/validUntil from Date.now()),
// and a hosts map so a did:web host name can point at the loopback HTTPS server (the SDK fetches did:web over
// plain http for "localhost"/"127.0.0.1", so HTTPS tests need another name). Pass NODE_EXTRA_CA_CERTS for the
// throwaway test CA.
//
// spec (create):
//   {kind: "offer"|"receipt", format: "eip712"|"jws",
//    privateKey: "0x…" (eip712) | jwk: {private JWK}, kid: "did:…", alg?: "ES256"|"ES256K"|"EdDSA" (jws),
//    now?: unix seconds, resourceUrl, network,
//    offer: scheme, asset, payTo, amount, offerValiditySeconds?, acceptIndex?,
//    receipt: payer, transaction?}
// item (verify/bench): {artifact: envelope, kind?: "offer"|"receipt"} or a bare envelope.
// result (verify): {ok, kind, format, signer?, kid?, payload?, error?}

import crypto from "node:crypto";
import dns from "node:dns";
import { privateKeyToAccount } from "viem/accounts";
import {
  createOfferEIP712,
  createOfferJWS,
  createReceiptEIP712,
  createReceiptJWS,
  extractJWSHeader,
  extractJWSPayload,
  hashOfferTypedData,
  hashReceiptTypedData,
  verifyOfferSignatureEIP712,
  verifyOfferSignatureJWS,
  verifyReceiptSignatureEIP712,
  verifyReceiptSignatureJWS,
} from "@x402/extensions/offer-receipt";

// ---- plumbing ----------------------------------------------------------------------------------------------

function installHosts(hosts) {
  if (!hosts || Object.keys(hosts).length === 0) return;
  const table = Object.fromEntries(Object.entries(hosts).map(([k, v]) => [k.toLowerCase(), v]));
  const original = dns.lookup;
  // net/tls read dns.lookup at connect time, so this redirects Node's fetch for the listed names only.
  dns.lookup = function lookup(hostname, options, callback) {
    if (typeof options === "function") {
      callback = options;
      options = {};
    }
    const address = table[String(hostname).toLowerCase()];
    if (address === undefined) return original.call(this, hostname, options, callback);
    const family = address.includes(":") ? 6 : 4;
    if (options && options.all) return process.nextTick(callback, null, [{ address, family }]);
    return process.nextTick(callback, null, address, family);
  };
}

function withClock(now, fn) {
  if (now === undefined || now === null) return fn();
  const realNow = Date.now;
  Date.now = () => Number(now) * 1000;
  return Promise.resolve()
    .then(fn)
    .finally(() => {
      Date.now = realNow;
    });
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

function algForJwk(jwk) {
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  if (jwk.kty === "EC" && jwk.crv === "P-256") return "ES256";
  if (jwk.kty === "EC" && jwk.crv === "secp256k1") return "ES256K";
  throw new Error(`unsupported JWK ${jwk.kty}/${jwk.crv}`);
}

// A JWSSigner as the SDK defines it: {kid, format, algorithm, sign(bytes) → base64url signature}.
function jwsSigner(jwk, kid, alg) {
  const key = crypto.createPrivateKey({ key: jwk, format: "jwk" });
  const algorithm = alg ?? algForJwk(jwk);
  return {
    kid,
    format: "jws",
    algorithm,
    sign: async (bytes) => {
      if (jwk.kty === "OKP") return b64url(crypto.sign(null, bytes, key));
      // JWS ECDSA is raw r||s (IEEE P1363), not DER.
      return b64url(crypto.sign("sha256", bytes, { key, dsaEncoding: "ieee-p1363" }));
    },
  };
}

function signTypedDataFor(privateKey) {
  const account = privateKeyToAccount(privateKey);
  return { address: account.address, sign: (params) => account.signTypedData(params) };
}

function kindOf(item) {
  if (item.kind) return item.kind;
  const env = item.artifact;
  const payload = env.format === "jws" ? extractJWSPayload(env.signature) : env.payload;
  return payload && "payer" in payload ? "receipt" : "offer";
}

const normalize = (item) => (item && item.artifact ? item : { artifact: item });

// ---- commands ----------------------------------------------------------------------------------------------

async function createOne(spec) {
  return withClock(spec.now, async () => {
    if (spec.format === "eip712") {
      const { address, sign } = signTypedDataFor(spec.privateKey);
      const artifact =
        spec.kind === "offer"
          ? await createOfferEIP712(spec.resourceUrl, offerInput(spec), sign)
          : await createReceiptEIP712(receiptInput(spec), sign);
      return { artifact, signer: address };
    }
    if (spec.format === "jws") {
      const signer = jwsSigner(spec.jwk, spec.kid, spec.alg);
      const artifact =
        spec.kind === "offer"
          ? await createOfferJWS(spec.resourceUrl, offerInput(spec), signer)
          : await createReceiptJWS(receiptInput(spec), signer);
      return { artifact, kid: spec.kid, alg: signer.algorithm };
    }
    throw new Error(`unknown format ${spec.format}`);
  });
}

function offerInput(spec) {
  return {
    acceptIndex: spec.acceptIndex ?? 0,
    scheme: spec.scheme,
    network: spec.network,
    asset: spec.asset,
    payTo: spec.payTo,
    amount: spec.amount,
    offerValiditySeconds: spec.offerValiditySeconds,
  };
}

function receiptInput(spec) {
  return { resourceUrl: spec.resourceUrl, payer: spec.payer, network: spec.network, transaction: spec.transaction };
}

async function verifyOne(item) {
  const { artifact } = item;
  let kind;
  try {
    kind = kindOf(item);
    if (artifact.format === "eip712") {
      const fn = kind === "offer" ? verifyOfferSignatureEIP712 : verifyReceiptSignatureEIP712;
      const { signer, payload } = await fn(artifact);
      return { ok: true, kind, format: "eip712", signer, payload };
    }
    if (artifact.format === "jws") {
      const fn = kind === "offer" ? verifyOfferSignatureJWS : verifyReceiptSignatureJWS;
      const payload = await fn(artifact);
      const header = extractJWSHeader(artifact.signature);
      return { ok: true, kind, format: "jws", kid: header.kid, alg: header.alg, payload };
    }
    throw new Error(`unknown format ${artifact.format}`);
  } catch (error) {
    return { ok: false, kind, format: artifact?.format, error: String(error?.message ?? error) };
  }
}

async function benchOne(item, n) {
  const first = await verifyOne(item);
  if (!first.ok) return { ...first, n: 0 };
  // Mean over all n calls, and the best 50-call slice (the figure least disturbed by other processes).
  const slice = 50;
  let best = 0;
  const start = process.hrtime.bigint();
  for (let done = 0; done < n; done += slice) {
    const sliceStart = process.hrtime.bigint();
    for (let i = 0; i < slice; i++) {
      const r = await verifyOne(item);
      if (!r.ok) throw new Error(`verification failed during bench: ${r.error}`);
    }
    best = Math.max(best, slice / (Number(process.hrtime.bigint() - sliceStart) / 1e9));
  }
  const calls = Math.ceil(n / slice) * slice;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    ok: true, kind: first.kind, format: first.format, alg: first.alg,
    n: calls, seconds, perSecond: calls / seconds, bestPerSecond: best,
  };
}

async function main() {
  const command = process.argv[2];
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
  installHosts(input.hosts);
  let output;
  if (command === "create") {
    const artifacts = [];
    for (const spec of input.specs) artifacts.push(await createOne(spec));
    output = { artifacts };
  } else if (command === "verify") {
    const results = [];
    for (const item of input.artifacts) results.push(await verifyOne(normalize(item)));
    output = { results };
  } else if (command === "digest") {
    // The EIP-712 digest the SDK signs (null for JWS): an independent reference for ours.
    const digests = input.artifacts.map((item) => {
      const { artifact } = normalize(item);
      if (artifact.format !== "eip712") return null;
      const hash = kindOf(normalize(item)) === "offer" ? hashOfferTypedData : hashReceiptTypedData;
      return hash(artifact.payload);
    });
    output = { digests };
  } else if (command === "bench") {
    const results = [];
    for (const item of input.artifacts) results.push(await benchOne(normalize(item), input.n ?? 1000));
    output = { results };
  } else {
    process.stderr.write("usage: node peer.mjs create|verify|digest|bench < input.json\n");
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(output) + "\n");
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
