/** Turns --crypto / --key-file into a mode, key and provider, with the start-up line that says which. */
import { type KeySource, readKeyFile } from './keys';
import type { ChatMode } from './protocol';
import { createProvider, type CryptoProvider, type ProviderChoice } from './provider';

export type CryptoChoice = 'none' | ProviderChoice;
export const CRYPTO_CHOICES: readonly CryptoChoice[] = ['none', 'cryptodev', 'software', 'auto'];

export interface ChatCrypto {
  readonly mode: ChatMode;
  readonly key?: KeySource;
  readonly provider?: CryptoProvider;
  /** "cipher: ..." — printed when the chat starts. */
  readonly startupLine: string;
  close(): void;
}

export class CryptoSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CryptoSetupError';
  }
}

export function parseCryptoChoice(value: string | undefined): CryptoChoice | undefined {
  if (value === undefined) return undefined;
  if (!(CRYPTO_CHOICES as readonly string[]).includes(value)) throw new CryptoSetupError(`--crypto must be one of ${CRYPTO_CHOICES.join(', ')}`);
  return value as CryptoChoice;
}

/** Without a key file the default is 'none'; with one it is 'auto'. */
export function setupCrypto(choice: CryptoChoice | undefined, keyFile: string | undefined): ChatCrypto {
  const effective = choice ?? (keyFile ? 'auto' : 'none');
  if (effective === 'none') {
    return { mode: 'none', startupLine: 'cipher: none (plain text: anyone on the path can read this chat)', close: () => undefined };
  }
  if (!keyFile) throw new CryptoSetupError(`--crypto ${effective} needs --key-file FILE (make one with: vlab chat keygen FILE)`);
  const key = readKeyFile(keyFile);
  let provider: CryptoProvider;
  try {
    provider = createProvider(effective);
  } catch (err) {
    throw new CryptoSetupError(`--crypto ${effective}: ${(err as Error).message}`);
  }
  return { mode: 'sealed', key, provider, startupLine: provider.description, close: () => provider.close() };
}
