import { openMemoryStore } from '../src/store/memory-store.js';
import { runStoreAcceptance } from './store-acceptance.js';

runStoreAcceptance('memory', async () => {
  const store = await openMemoryStore();
  return { store, cleanup: () => store.close() };
});
