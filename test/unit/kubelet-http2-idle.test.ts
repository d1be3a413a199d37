// The kubelet port's HTTP/2 connections (src/kubelet/http.ts closeWhenIdle), on a real HTTP/2 server
// on loopback: one without streams is closed after its idle time; one with an open stream stays,
// however quiet the stream, and is closed once its last stream has been gone for the idle time.
import { once } from 'node:events';
import { connect, createSecureServer, type Http2SecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWhenIdle } from '../../src/kubelet/http.ts';
import { selfSignedServingCertificate } from '../../src/tls/pki.ts';
import { waitFor } from '../support/wait.ts';

const IDLE_MS = 300;
let server: Http2SecureServer;
let url: string;
const held: ServerHttp2Stream[] = [];

beforeAll(async () => {
  const issued = await selfSignedServingCertificate('h2-idle', ['127.0.0.1']);
  server = createSecureServer({ key: issued.privateKeyPem, cert: issued.certificatePem });
  server.on('session', (session) => closeWhenIdle(session, IDLE_MS));
  server.on('stream', (stream) => {
    // A follow that says nothing after its headers.
    stream.respond({ ':status': 200 });
    held.push(stream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => server.close());

describe('HTTP/2 connections to the kubelet port', () => {
  it('are closed when they carry no stream for the idle time', async () => {
    const client = connect(url, { rejectUnauthorized: false });
    client.on('error', () => {});
    await once(client, 'connect');
    await waitFor('the idle connection closed', () => (client.closed || client.destroyed ? true : undefined));
  });

  it('stay open while a quiet stream is open, and close once it is gone', async () => {
    const client = connect(url, { rejectUnauthorized: false });
    client.on('error', () => {});
    const stream = client.request({ ':path': '/containerLogs/ns/pod/c?follow=true' });
    stream.on('error', () => {});
    await once(stream, 'response');
    await sleep(IDLE_MS * 4);
    expect(client.closed || client.destroyed).toBe(false);
    stream.close();
    await waitFor('the connection closed after its last stream', () =>
      client.closed || client.destroyed ? true : undefined,
    );
  });
});
