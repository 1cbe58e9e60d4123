/*
 * DynamoDB Local, started with its own command line, but listening on one loopback address only.
 *
 * DynamoDB Local 3.x has no bind option: its DynamoDBProxyServer builds a Jetty Server(port), whose
 * connector listens on every interface. This launcher builds the same server through
 * ServerRunner.createServerFromCommandLineArgs, sets the connector's host before it starts, and
 * wraps the handler so requests naming a non-loopback Host or Origin are refused: the rules of
 * dev/loopback.ts (DNS rebinding; cross-origin requests from web pages).
 *
 * Usage: java -cp <this dir>:DynamoDBLocal.jar:DynamoDBLocal_lib/* AloftDynamoDbLocal <host> <DynamoDB Local args...>
 * Compiled by dev/dynamodb-launcher.ts (javac --release 17) into a per-user cache.
 */
import java.lang.reflect.Field;
import java.net.URI;
import java.util.Arrays;
import java.util.Locale;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public final class AloftDynamoDbLocal {
  private AloftDynamoDbLocal() {}

  public static void main(String[] argv) throws Exception {
    if (argv.length < 1) {
      System.err.println("usage: AloftDynamoDbLocal <loopback host> <DynamoDB Local arguments...>");
      System.exit(2);
    }
    String host = argv[0];
    if (!isLoopbackName(host)) {
      System.err.println("AloftDynamoDbLocal: refusing to listen on non-loopback host " + host);
      System.exit(2);
    }
    DynamoDBProxyServer proxy =
        ServerRunner.createServerFromCommandLineArgs(Arrays.copyOfRange(argv, 1, argv.length));
    Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Server server = (Server) field.get(proxy);
    Connector[] connectors = server.getConnectors();
    if (connectors.length == 0) throw new IllegalStateException("DynamoDB Local built no connector");
    for (Connector connector : connectors) {
      if (!(connector instanceof ServerConnector)) {
        throw new IllegalStateException("unexpected connector " + connector.getClass().getName());
      }
      ((ServerConnector) connector).setHost(host);
    }
    server.setHandler(new LoopbackHostGuard(server.getHandler()));
    try {
      proxy.start();
    } catch (Exception e) {
      // Jetty's threads would keep a JVM whose server failed to bind alive.
      e.printStackTrace();
      System.exit(1);
    }
  }

  static boolean isLoopbackName(String host) {
    String h = host.toLowerCase(Locale.ROOT);
    if (h.startsWith("[") && h.endsWith("]")) h = h.substring(1, h.length() - 1);
    return h.equals("127.0.0.1")
        || h.equals("::1")
        || h.equals("localhost")
        || h.endsWith(".localhost");
  }

  static boolean isLoopbackOrigin(String origin) {
    if (origin == null) return true;
    try {
      String host = new URI(origin).getHost();
      return host != null && isLoopbackName(host);
    } catch (Exception e) {
      return false; // "null" (sandboxed frames, file: pages) and anything unparsable
    }
  }

  /** 403 for a request whose Host is not a loopback name, or whose Origin is not a loopback origin. */
  static final class LoopbackHostGuard extends Handler.Wrapper {
    LoopbackHostGuard(Handler next) {
      super(next);
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) throws Exception {
      String host = Request.getServerName(request);
      String origin = request.getHeaders().get("Origin");
      if (host == null || !isLoopbackName(host) || !isLoopbackOrigin(origin)) {
        Response.writeError(
            request, response, callback, 403, "aloft dev serves loopback only (Host and Origin must be local)");
        return true;
      }
      return super.handle(request, response, callback);
    }
  }
}
