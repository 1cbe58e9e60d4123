import { test } from "node:test";
import assert from "node:assert/strict";
import { deserialize, digest, serialize } from "../sdk/serde.ts";
import { callIdentity } from "../sdk/core/calls.ts";
import { serializeArgs } from "../sdk/core/calls.ts";
import { SerializationError } from "../sdk/errors.ts";

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

const roundTrips: [string, unknown][] = [
  ["a string", 'héllo \u0000 "quoted"'],
  ["a number", 3.25],
  ["zero and negatives", [0, -1, -2.5]],
  ["true", true],
  ["null", null],
  ["a plain object", { a: 1, b: [true, null, "x"], c: { d: {} } }],
  ["an empty array", []],
  ["undefined at the top level", undefined],
  ["undefined in an object", { a: undefined, b: 1 }],
  ["undefined in an array", [undefined, 1, undefined]],
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["-Infinity", -Infinity],
  ["non-finite numbers nested", { xs: [NaN, Infinity, -Infinity, 1] }],
  ["a Date", new Date("2024-02-29T12:34:56.789Z")],
  ["a Date before the epoch", new Date(-1e12)],
  ["a BigInt", 12345678901234567890123456789n],
  ["a negative BigInt", -(2n ** 70n)],
  ["a Uint8Array", new Uint8Array([0, 1, 127, 128, 255])],
  ["an empty Uint8Array", new Uint8Array()],
  [
    "a Map with mixed keys",
    new Map<unknown, unknown>([
      ["a", 1],
      [2, "b"],
      [{ k: 1 }, [1n]],
    ]),
  ],
  ["a Set", new Set([1, "1", 2n, undefined])],
  ["nested Map and Set", new Map([["s", new Set([new Date(0), new Map([["x", new Uint8Array([9])]])])]])],
  ["an object with a $t key", { $t: "d", v: 5 }],
  ["an object with an unknown $t key", { $t: "zz", other: [1] }],
  ["a $t object inside a Map", new Map([["k", { $t: "m", v: [] }]])],
  ["a $t object whose values are tagged", { $t: 1, v: new Date(5), w: undefined }],
  ["a string that looks tagged", '{"$t":"u"}'],
  [
    "the same object twice (a tree with shared leaves)",
    (() => {
      const leaf = { n: 1 };
      return { a: leaf, b: [leaf, leaf] };
    })(),
  ],
];

await test("serialize → deserialize round trips", async (t) => {
  for (const [name, value] of roundTrips) {
    await t.test(name, () => {
      const payload = serialize(value);
      assert.equal(typeof payload, "string");
      JSON.parse(payload); // a payload is always valid JSON text
      assert.deepEqual(deserialize(payload), value);
    });
  }
});

await test("an invalid Date stays invalid (not the epoch)", () => {
  const back = deserialize(serialize({ at: new Date(NaN) })) as { at: Date };
  assert.ok(back.at instanceof Date);
  assert.ok(Number.isNaN(back.at.getTime()), `decoded as ${back.at.getTime()}`);
});

await test("an object with a $t key does not decode as a tagged value", () => {
  const back = deserialize(serialize({ $t: "d", v: 0 }));
  assert.ok(!(back instanceof Date));
  assert.deepEqual(back, { $t: "d", v: 0 });
});

await test("an object with a null prototype serialises as a plain object", () => {
  const o = Object.assign(Object.create(null) as object, { a: 1 });
  assert.deepEqual(deserialize(serialize(o)), { a: 1 });
});

await test("tagged forms are what the format documents", () => {
  assert.equal(serialize(undefined), '{"$t":"u"}');
  assert.equal(serialize(1n), '{"$t":"b","v":"1"}');
  assert.equal(serialize(new Date(7)), '{"$t":"d","v":7}');
  assert.equal(serialize(new Map([["a", 1n]])), '{"$t":"m","v":[["a",{"$t":"b","v":"1"}]]}');
  assert.equal(serialize({ $t: 1 }), '{"$t":"o","v":{"$t":1}}');
});

const unserialisable: { name: string; value: unknown; what?: string; message: RegExp[] }[] = [
  {
    name: "a named function at the top level",
    value: function handler() {},
    message: [/^value: cannot serialise a function handler at the top level/],
  },
  {
    name: "an anonymous function in an array",
    value: [1, () => 2],
    what: "result of task t.x",
    message: [/^result of task t\.x: /, /function \(anonymous\) at \[1\]/],
  },
  {
    name: "a class instance in an object",
    value: { a: { b: [new Point(1, 2)] } },
    message: [/cannot serialise a Point at \.a\.b\[0\]/],
  },
  { name: "a symbol", value: { s: Symbol("x") }, message: [/cannot serialise a symbol at \.s/] },
  {
    name: "a function as a Map value",
    value: new Map([["k", () => 1]]),
    message: [/function \(anonymous\) at <map entry 0>/],
  },
  {
    name: "a class instance in a Set",
    value: new Set([1, new Point(0, 0)]),
    message: [/a Point at <set item 1>/],
  },
  {
    name: "a cycle",
    value: (() => {
      const o: Record<string, unknown> = { a: { b: 1 } };
      (o["a"] as Record<string, unknown>)["back"] = o;
      return o;
    })(),
    message: [/a cycle at \.a\.back: payloads must be trees/],
  },
  {
    name: "an array containing itself",
    value: (() => {
      const xs: unknown[] = [1];
      xs.push(xs);
      return xs;
    })(),
    message: [/a cycle at \[1\]/],
  },
  {
    name: "an Error instance",
    value: new Error("x"),
    message: [/cannot serialise a Error at the top level/],
  },
];

await test("values that cannot be serialised are rejected with their path and type", async (t) => {
  for (const c of unserialisable) {
    await t.test(c.name, () => {
      assert.throws(
        () => serialize(c.value, c.what),
        (e: unknown) => {
          assert.ok(e instanceof SerializationError, `expected SerializationError, got ${String(e)}`);
          assert.equal(e.code, "SERIALIZATION");
          for (const m of c.message) assert.match(e.message, m);
          assert.match(e.message, /must be JSON values|must be trees/);
          return true;
        },
      );
    });
  }
});

await test("serializeArgs names the argument and the task", async (t) => {
  await t.test("a function as argument 2", () => {
    assert.throws(() => serializeArgs("data_pipeline.processChunk", [1, () => 0]), {
      name: "SerializationError",
      message:
        /^argument 2 of task data_pipeline\.processChunk: cannot serialise a function \(anonymous\) at the top level/,
    });
  });
  await t.test("a class instance deep inside argument 1", () => {
    assert.throws(() => serializeArgs("env.t", [{ rows: [new Point(1, 1)] }, 2]), {
      name: "SerializationError",
      message: /^argument 1 of task env\.t: cannot serialise a Point at \.rows\[0\]/,
    });
  });
  await t.test("valid arguments form a JSON list", () => {
    const p = serializeArgs("env.t", [1, "a", undefined, new Set([2])]);
    assert.deepEqual(deserialize(p), [1, "a", undefined, new Set([2])]);
  });
  await t.test("no arguments", () => {
    assert.equal(serializeArgs("env.t", []), "[]");
  });
});

await test("deserialize rejects what no Aloft wrote", async (t) => {
  await t.test("text that is not JSON", () => {
    assert.throws(() => deserialize("{oops"), {
      name: "SerializationError",
      message: /payload is not valid JSON/,
    });
  });
  await t.test("an unknown tag", () => {
    assert.throws(() => deserialize('{"$t":"zz","v":1}'), {
      name: "SerializationError",
      message: /unknown payload tag "zz": written by a newer Aloft\?/,
    });
  });
});

await test("digest is stable and separates its parts", () => {
  assert.equal(digest("a", "b"), digest("a", "b"));
  assert.notEqual(digest("a", "b"), digest("ab"));
  assert.notEqual(digest("a", "b"), digest("a", "b", ""));
  assert.match(digest("x"), /^[A-Za-z0-9_-]{22}$/);
  // Fixed values: call ids are stored by every engine and must be derived again by the next Aloft
  // (docs/identity.md). A change here is a new identity scheme (IDENTITY_VERSION), never a refactor.
  assert.equal(digest("a", "b"), "j7IO9jztQUX8Lpg__ll9Hc");
  assert.equal(digest("é€😀"), "msc9cE8ceQv40iUdsOKMQ5");
  assert.equal(callIdentity("r-abc", "env.task", "g/h", digest("[1]"), 2), "7dcgkX8EvZ9t9SI_NZkK96");
});
