import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseFolderConfig } from '../src/node/config.js';
import { RateLimiter } from '../src/node/rate-limiter.js';

const WHERE = '/f/.mesh/config';

describe('folder settings (.mesh/config)', () => {
  it('reads every setting of a documented file', () => {
    const text = [
      '# settings of mesh join for this folder',
      'port = 41235',
      'peers = ["/ip4/192.168.1.20/tcp/41235", "/ip4/10.0.0.2/tcp/4001"]',
      'mdns = false',
      'pull-concurrency = 8',
      'watch-delay-ms = 1000',
      'max-send-kibps = 512',
      'max-recv-kibps = 0',
    ].join('\n');
    assert.deepEqual(parseFolderConfig(text, WHERE), {
      port: 41235,
      peers: ['/ip4/192.168.1.20/tcp/41235', '/ip4/10.0.0.2/tcp/4001'],
      mdns: false,
      pullConcurrency: 8,
      watchDelayMs: 1000,
      maxSendKiBps: 512,
      maxRecvKiBps: 0,
    });
    assert.deepEqual(parseFolderConfig('', WHERE), {});
  });

  it('refuses what it does not know or accept, naming the file, the line or the setting', () => {
    for (const [text, pattern] of [
      ['prot = 4001', /unknown setting "prot" \(known: port, peers, mdns/],
      ['toString = 1', /unknown setting "toString"/],
      ['__proto__ = 1', /unknown setting "__proto__"/],
      ['port = 70000', /port must be a whole number from 0 to 65535, not 70000/],
      ['port = "4001"', /port must be a whole number from 0 to 65535, not "4001"/],
      ['pull-concurrency = 0', /pull-concurrency must be a whole number from 1 to 64/],
      ['mdns = "no"', /mdns must be true or false/],
      ['peers = "/ip4/1.2.3.4/tcp/1"', /peers must be a list of at most 256 addresses/],
      ['peers = [1, 2]', /peers must be a list/],
      ['port = 1\nport = 2', /is not valid TOML \(line 2:/],
      ['port = ', /is not valid TOML \(line 1:/],
    ] as const) {
      assert.throws(
        () => parseFolderConfig(text, WHERE),
        (error: unknown) => error instanceof ConfigError && error.message.startsWith(WHERE) && pattern.test(error.message),
        text,
      );
    }
  });
});

describe('rate limiter', () => {
  it('lets a burst through at once, then holds the rest to the rate', async () => {
    const limiter = new RateLimiter(400 * 1024); // a burst of 100 KiB
    const started = performance.now();
    await limiter.take(100 * 1024);
    assert.ok(performance.now() - started < 50, 'the first burst passes at once');
    for (let i = 0; i < 4; i++) await limiter.take(50 * 1024); // 200 KiB more: at least 0.5 s
    assert.ok(performance.now() - started >= 450, `took ${performance.now() - started} ms`);
  });

  it('serves takers in order, each chunk larger than the burst paid off over time', async () => {
    const limiter = new RateLimiter(1024 * 1024);
    const order: number[] = [];
    const started = performance.now();
    await Promise.all([1, 2, 3].map((n) => limiter.take(300 * 1024).then(() => order.push(n))));
    assert.deepEqual(order, [1, 2, 3]);
    assert.ok(performance.now() - started >= 600, `900 KiB at 1 MiB/s with a 256 KiB burst: took ${performance.now() - started} ms`);
  });
});
