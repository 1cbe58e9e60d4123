/**
 * The semantic suite on the AWS path: the real coordinator and executor handlers on DynamoDB Local
 * and fauxqs (SQS + S3), driven by the local event-source poller, through AloftClient.
 */
import { startDevStack } from "../../dev/stack.ts";
import { AloftClient } from "../../sdk/aws/client.ts";
import { semanticSuite } from "./suite.ts";

semanticSuite(async () => {
  const dev = await startDevStack({ visibilityTimeoutSeconds: 10 });
  const client = new AloftClient(dev.config);
  return {
    name: "aws-local",
    run: (task, ...args) => client.run(task, ...args),
    recover: (id) => client.recover(id),
    replays: async (id) => client.attach(id).replays(),
    executorMessages: () =>
      Object.fromEntries(
        dev.pollers.flatMap((p) => {
          const key = Object.entries(dev.config.executorQueues).find(([, url]) => url === p.queueUrl)?.[0];
          return key ? [[key, p.stats.received]] : [];
        }),
      ),
    close: async () => {
      client.destroy();
      await dev.stop();
    },
  };
});
