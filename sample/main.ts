import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { AppModule, describeStorage } from './app.module.js';
import { startTelemetry } from './telemetry.js';

// Before the app boots: EzSession takes its OpenTelemetry meter then. /metrics serves it.
startTelemetry();
const port = Number(process.env.PORT || 3000);

const app = await NestFactory.create(AppModule, new ExpressAdapter());
// Ctrl-C closes what EzSession opened (database connections, Redis client).
app.enableShutdownHooks();
await app.listen(port);
new Logger('Sample').log(`Serving http://localhost:${port} (${describeStorage()})`);
