import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Req, Res } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { EzSessionHealthIndicator } from '../lib/index.js';
import { serveMetrics } from './telemetry.js';

/** What an operator scrapes: Prometheus metrics, and a health check for the load balancer. */
@Controller()
export class ObservabilityController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly sessions: EzSessionHealthIndicator
  ) {}

  @Get('metrics')
  metrics(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    serveMetrics(request, response);
  }

  /** 200 when up or degraded (Redis down: reads come from the store), 503 when the store is down. */
  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.sessions.isHealthy('sessions', { timeout: 1000 })]);
  }
}
