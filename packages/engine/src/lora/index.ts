export {
  AdapterManager,
  type AdapterInfo,
  type AdapterLease,
  type AdapterStats,
  type LoraModel,
} from './adapter-manager.js';
export { AdapterSlots, type Placement } from './adapter-slots.js';
export { AdapterConfigError, AdapterMismatchError, AdapterNotFoundError, adapterErrorClasses } from './errors.js';
export { readPeftAdapter, PEFT_MODULES, type PeftAdapter } from './peft-adapter.js';
export {
  writeRandomAdapter,
  ALL_LORA_MODULES,
  peftTensorName,
  type RandomAdapterOptions,
} from '../model-loader/writers/peft-writer.js';
export { mergeAdapter } from '../model-loader/writers/peft-merge.js';
