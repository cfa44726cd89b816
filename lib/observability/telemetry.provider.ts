import type { FactoryProvider } from '@nestjs/common';
import { loadOpenTelemetry, openTelemetrySink } from './open-telemetry.sink.js';
import { SessionTelemetry } from './session-telemetry.js';

/** The telemetry, bridged to OpenTelemetry at boot when the app has `@opentelemetry/api`. */
export const provideTelemetry: FactoryProvider<SessionTelemetry> = {
  provide: SessionTelemetry,
  useFactory: async () => {
    const telemetry = new SessionTelemetry();
    const api = await loadOpenTelemetry();
    if (api) telemetry.sink = openTelemetrySink(api, telemetry);
    return telemetry;
  }
};
