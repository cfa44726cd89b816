import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { EzSessionModuleOptions } from './interfaces/ez-session-options.interface.js';

export const {
  ConfigurableModuleClass: EzSessionConfigurableModule,
  MODULE_OPTIONS_TOKEN: EZ_SESSION_MODULE_OPTIONS,
  OPTIONS_TYPE: EZ_SESSION_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: EZ_SESSION_ASYNC_OPTIONS_TYPE
} = new ConfigurableModuleBuilder<EzSessionModuleOptions>()
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createEzSessionOptions')
  .build();
