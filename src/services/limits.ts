import { GatewayError } from '../errors.ts';

/** Checks lengths that the schema leaves to config, with messages that name the field and the limit. */
export function checkText(field: string, text: string, maxChars: number): void {
  if (text.trim().length === 0) throw new GatewayError('invalid_request', `${field} is empty`);
  if (text.length > maxChars) throw new GatewayError('too_large', `${field} is ${text.length} characters; the limit is ${maxChars}`, { details: { field, limit: maxChars, length: text.length } });
}

export function checkBatch(field: string, n: number, maxItems: number): void {
  if (n === 0) throw new GatewayError('invalid_request', `${field} is empty`);
  if (n > maxItems) throw new GatewayError('too_large', `${field} has ${n} items; the limit is ${maxItems}`, { details: { field, limit: maxItems, items: n } });
}
