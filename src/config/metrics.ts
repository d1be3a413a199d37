// The `metrics` section: Spillway's own Prometheus metrics, served over plain HTTP.
import { z } from 'zod';
import { ipAddress, port } from './fields.ts';

export const metricsSection = z
  .strictObject({
    enabled: z.boolean().default(true),
    port: port.default(9095),
    /** Default: all addresses inside a pod (so Prometheus can scrape it), 127.0.0.1 anywhere else. */
    bindAddress: ipAddress().optional(),
  })
  .prefault({});
