import type { Handlers } from '../contract/handlers.ts';

/** GET /: opening the server's address leads to the reference, the contract and the health check. */
export function createServiceHandlers(contractVersion: string): Pick<Handlers, 'getIndex'> {
  return {
    async getIndex() {
      return {
        status: 200,
        body: { name: 'todo-api', version: contractVersion, links: { docs: '/docs', openapi: '/openapi.yaml', health: '/health' } },
      };
    },
  };
}
