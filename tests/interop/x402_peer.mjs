// Test peer for x402 payments with the published TypeScript SDK (@x402/fetch, @x402/evm, @x402/express,
// @x402/extensions/offer-receipt 2.27.0).
//
//   node x402_peer.mjs pay       < {url, privateKey, network, asset}
//        → {status, body, paymentRequired, settlement, receipt, offers, verified: {receipt, offers[]}}
//   node x402_peer.mjs merchant  < {port, network, asset, name, version, amount, payTo, facilitatorUrl,
//                                   signerKey, kid, includeTxHash}
//        → prints {"ready": true, "url": …} once listening, then serves until killed.
//
// Only the SDKs' public APIs are used; the rest is plumbing.

import express from "express";
import { privateKeyToAccount } from "viem/accounts";
import { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm";
import { ExactEvmScheme as ExactEvmServerScheme } from "@x402/evm/exact/server";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import {
  createEIP712OfferReceiptIssuer,
  createOfferReceiptExtension,
  declareOfferReceiptExtension,
  extractJWSHeader,
  extractOffersFromPaymentRequired,
  extractReceiptFromResponse,
  verifyOfferSignatureEIP712,
  verifyOfferSignatureJWS,
  verifyReceiptSignatureEIP712,
  verifyReceiptSignatureJWS,
} from "@x402/extensions/offer-receipt";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function verifyArtifact(artifact, kind) {
  try {
    let result;
    if (kind === "offer") {
      result = artifact.format === "jws" ? await verifyOfferSignatureJWS(artifact) : await verifyOfferSignatureEIP712(artifact);
    } else {
      result = artifact.format === "jws" ? await verifyReceiptSignatureJWS(artifact) : await verifyReceiptSignatureEIP712(artifact);
    }
    if (artifact.format === "jws") {
      // the JWS verifiers resolve the kid (did:web) and return the verified payload itself
      return { ok: true, signer: null, kid: extractJWSHeader(artifact.signature).kid, payload: result };
    }
    return { ok: true, signer: result.signer, kid: null, payload: result.payload };
  } catch (error) {
    return { ok: false, error: String(error && error.message ? error.message : error) };
  }
}

async function pay(input) {
  const account = privateKeyToAccount(input.privateKey);
  const client = new x402Client();
  client.register(input.network, new ExactEvmScheme(account));
  client.setSpendControls({ allowedAssets: [{ network: input.network, asset: input.asset }] });
  // Keep the 402 the paying fetch saw: the offers live in its PAYMENT-REQUIRED header.
  let paymentRequired = null;
  const spy = async (resource, init) => {
    const response = await fetch(resource, init);
    if (response.status === 402 && !paymentRequired) {
      const header = response.headers.get("PAYMENT-REQUIRED");
      if (header) paymentRequired = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
    }
    return response;
  };
  const payingFetch = wrapFetchWithPayment(spy, client);
  const response = await payingFetch(input.url, { method: "GET" });
  const body = await response.text();
  const header = response.headers.get("PAYMENT-RESPONSE");
  const settlement = header ? decodePaymentResponseHeader(header) : null;
  const receipt = extractReceiptFromResponse(response) ?? null;
  const offers = paymentRequired ? extractOffersFromPaymentRequired(paymentRequired) : [];
  const verified = {
    receipt: receipt ? await verifyArtifact(receipt, "receipt") : null,
    offers: await Promise.all(offers.map((offer) => verifyArtifact(offer, "offer"))),
  };
  return { status: response.status, body, paymentRequired, settlement, receipt, offers, verified };
}

async function merchant(input) {
  const account = privateKeyToAccount(input.signerKey);
  const issuer = createEIP712OfferReceiptIssuer(input.kid, (args) => account.signTypedData(args));
  const facilitator = new HTTPFacilitatorClient({ url: input.facilitatorUrl });
  const server = new x402ResourceServer(facilitator);
  server.register(input.network, new ExactEvmServerScheme());
  server.registerExtension(createOfferReceiptExtension(issuer));
  const base = `http://localhost:${input.port}`;
  const routes = {
    "GET /paid": {
      accepts: {
        scheme: "exact",
        network: input.network,
        payTo: input.payTo,
        price: { amount: input.amount, asset: input.asset, extra: { name: input.name, version: input.version } },
        maxTimeoutSeconds: 300,
      },
      resource: `${base}/paid`,
      description: "TS merchant",
      mimeType: "application/json",
      extensions: declareOfferReceiptExtension({ includeTxHash: input.includeTxHash !== false }),
    },
  };
  const app = express();
  app.get("/.well-known/did.json", (_req, res) => {
    const did = input.kid.split("#")[0];
    res.json({
      "@context": ["https://www.w3.org/ns/did/v1"],
      id: did,
      verificationMethod: [
        { id: input.kid, type: "EcdsaSecp256k1RecoveryMethod2020", controller: did, blockchainAccountId: `eip155:1:${account.address}` },
      ],
      assertionMethod: [input.kid],
    });
  });
  app.use(paymentMiddleware(routes, server));
  app.get("/paid", (_req, res) => res.json({ forecast: "rain", from: "ts" }));
  await new Promise((resolve) => app.listen(input.port, "127.0.0.1", resolve));
  process.stdout.write(JSON.stringify({ ready: true, url: `${base}/paid`, signer: account.address }) + "\n");
}

const command = process.argv[2];
const input = await readStdin();
if (command === "pay") {
  process.stdout.write(JSON.stringify(await pay(input)));
} else if (command === "merchant") {
  await merchant(input);
} else {
  process.stderr.write(`unknown command ${command}\n`);
  process.exit(2);
}
