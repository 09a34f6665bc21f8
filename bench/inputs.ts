/** The bench's synthetic inputs, shared by every bench script so their figures describe the same texts. */

/** n words cycling through ten, from `seed`: deterministic text of a known length. */
export const words = (n: number, seed: number) => Array.from({ length: n }, (_, i) => ['package', 'library', 'tool', 'server', 'the', 'a', 'data', 'network', 'files', 'and'][(i * 7 + seed) % 10]).join(' ');
/** A 300-word context with its answer in the first sentence (one 384-token window, two of 256). */
export const QA_300 = `The curl package is maintained by the Debian curl Maintainers. ${words(290, 1)}`;
/** A 3,000-word context with its answer at the end (~20 windows). */
export const QA_3000 = `${words(2980, 2)} The zsh package is maintained by Debian Zsh Maintainers.`;
/** A 400-word essay. */
export const ESSAY_400 = `Public libraries matter. ${words(395, 3)}`;
