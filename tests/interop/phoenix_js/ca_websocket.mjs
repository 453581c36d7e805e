// The `ws` WebSocket with the portal's private CA trusted, shaped as a transport for phoenix's Socket.
// phoenix calls `new transport(url, protocols)` and nothing more, so the TLS options are bound here.
import fs from "node:fs";
import crypto from "node:crypto";
import WebSocket from "ws";

export function caWebSocket(caFile) {
  const ca = fs.readFileSync(caFile);
  return class CaWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { ca });
    }
  };
}

/// A fresh WireGuard-shaped public key: 32 random bytes in base64 (the portal checks only the shape).
export function randomPublicKey() {
  return crypto.randomBytes(32).toString("base64");
}
