import type { BusinessNumber } from '../config/schema.js';

/** Which business number a webhook concerns, and so which tenant and SIP target its calls go to. */
export class Routing {
  private readonly byId: Map<string, BusinessNumber>;

  constructor(numbers: readonly BusinessNumber[]) {
    this.byId = new Map(numbers.map((n) => [n.phoneNumberId, n]));
  }

  numberFor(phoneNumberId: string): BusinessNumber | undefined {
    return this.byId.get(phoneNumberId);
  }
}
