package dev.sluice.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.ObjectSerializationCache;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.reflect.Method;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;

/** One broker under test: a plain blocking socket, one request in flight at a time. */
final class Broker {
    /** What one request led to: a parsed response, or the connection closed / timed out / failed. */
    static final class Outcome {
        final String status;          // "response", "closed", "timeout", "error"
        final String detail;
        final ApiMessage body;
        final JsonNode json;
        final short parsedVersion;

        Outcome(String status, String detail, ApiMessage body, JsonNode json, short parsedVersion) {
            this.status = status; this.detail = detail; this.body = body; this.json = json; this.parsedVersion = parsedVersion;
        }
        boolean ok() { return "response".equals(status); }
    }

    final String name;
    final String host;
    final int port;
    final int timeoutMs;
    /** Per-broker state cases hand on to later cases (topic ids, member ids, generations). */
    final Map<String, Object> state = new HashMap<>();
    private Socket socket;
    private DataInputStream in;
    private OutputStream out;
    private int correlationId = 1;

    Broker(String name, String hostPort, int timeoutMs) {
        this.name = name;
        int i = hostPort.lastIndexOf(':');
        this.host = hostPort.substring(0, i);
        this.port = Integer.parseInt(hostPort.substring(i + 1));
        this.timeoutMs = timeoutMs;
    }

    private void connect() throws IOException {
        if (socket != null) return;
        Socket s = new Socket();
        s.setTcpNoDelay(true);
        s.connect(new InetSocketAddress(host, port), timeoutMs);
        s.setSoTimeout(timeoutMs);
        socket = s;
        in = new DataInputStream(new java.io.BufferedInputStream(s.getInputStream(), 1 << 16));
        out = new java.io.BufferedOutputStream(s.getOutputStream(), 1 << 16);
    }

    void close() {
        if (socket != null) {
            try { socket.close(); } catch (IOException ignored) { }
        }
        socket = null; in = null; out = null;
    }

    Outcome send(ApiKeys key, short version, ApiMessage body) {
        return send(key, version, version, body);
    }

    /**
     * Sends {@code body} encoded at {@code bodyVersion} under a header that says {@code headerVersion}
     * (they differ only for the above-max cases, whose body no class can encode at that version).
     */
    Outcome send(ApiKeys key, short headerVersion, short bodyVersion, ApiMessage body) {
        ByteBuffer frame;
        int corr = correlationId++;
        try {
            short hv = key.requestHeaderVersion(bodyVersion);
            RequestHeaderData header = new RequestHeaderData()
                .setRequestApiKey(key.id).setRequestApiVersion(headerVersion)
                .setCorrelationId(corr).setClientId("protocol-diff");
            ObjectSerializationCache cache = new ObjectSerializationCache();
            int size = header.size(cache, hv) + body.size(cache, bodyVersion);
            frame = ByteBuffer.allocate(4 + size);
            frame.putInt(size);
            ByteBufferAccessor acc = new ByteBufferAccessor(frame);
            header.write(acc, cache, hv);
            body.write(acc, cache, bodyVersion);
            frame.flip();
        } catch (RuntimeException e) {
            return new Outcome("error", "encode: " + e, null, null, bodyVersion);
        }
        byte[] payload;
        try {
            connect();
            out.write(frame.array(), 0, frame.limit());
            out.flush();
            if (key == ApiKeys.PRODUCE && ((org.apache.kafka.common.message.ProduceRequestData) body).acks() == 0) {
                return new Outcome("noresponse", "", null, null, bodyVersion);
            }
            int len = in.readInt();
            if (len < 0 || len > 256 << 20) {
                close();
                return new Outcome("error", "bad frame length " + len, null, null, bodyVersion);
            }
            payload = new byte[len];
            in.readFully(payload);
        } catch (EOFException e) {
            close();
            return new Outcome("closed", "", null, null, bodyVersion);
        } catch (SocketTimeoutException e) {
            close();
            return new Outcome("timeout", "no response in " + timeoutMs + " ms", null, null, bodyVersion);
        } catch (IOException e) {
            close();
            String m = String.valueOf(e.getMessage());
            if (m.contains("reset") || m.contains("Broken pipe")) return new Outcome("closed", m, null, null, bodyVersion);
            return new Outcome("error", e.toString(), null, null, bodyVersion);
        }
        // An ApiVersions request above the broker's range is answered at v0 (KIP-511).
        short parseVersion = bodyVersion;
        if (key == ApiKeys.API_VERSIONS && headerVersion != bodyVersion) parseVersion = 0;
        try {
            ByteBufferAccessor acc = new ByteBufferAccessor(ByteBuffer.wrap(payload));
            ResponseHeaderData rh = new ResponseHeaderData(acc, key.responseHeaderVersion(parseVersion));
            if (rh.correlationId() != corr) {
                close();
                return new Outcome("error", "correlation id " + rh.correlationId() + " != " + corr, null, null, parseVersion);
            }
            ApiMessage resp = key.messageType.newResponse();
            ByteBuffer rest = ByteBuffer.wrap(payload, payload.length - remaining(acc, payload), remaining(acc, payload));
            ByteBufferAccessor bodyAcc = new ByteBufferAccessor(rest.slice());
            try {
                resp.read(bodyAcc, parseVersion);
            } catch (RuntimeException e) {
                if (key != ApiKeys.API_VERSIONS || parseVersion == 0) throw e;
                // A v0 fallback answer to a supported-looking version.
                parseVersion = 0;
                rest = ByteBuffer.wrap(payload, payload.length - remaining(acc, payload), remaining(acc, payload));
                resp = key.messageType.newResponse();
                bodyAcc = new ByteBufferAccessor(rest.slice());
                resp.read(bodyAcc, parseVersion);
            }
            JsonNode json = toJson(resp, parseVersion);
            if (bodyAcc.remaining() > 0 && json instanceof com.fasterxml.jackson.databind.node.ObjectNode o) {
                o.put("_trailingBytes", bodyAcc.remaining());
            }
            return new Outcome("response", "", resp, json, parseVersion);
        } catch (RuntimeException e) {
            close();
            return new Outcome("error", "undecodable response at v" + parseVersion + ": " + e, null, null, parseVersion);
        }
    }

    private static int remaining(ByteBufferAccessor acc, byte[] payload) {
        return acc.remaining();
    }

    static JsonNode toJson(ApiMessage m, short version) {
        try {
            Class<?> conv = Class.forName(m.getClass().getName() + "JsonConverter");
            try {
                Method w = conv.getMethod("write", m.getClass(), short.class, boolean.class);
                return (JsonNode) w.invoke(null, m, version, false);
            } catch (NoSuchMethodException e) {
                Method w = conv.getMethod("write", m.getClass(), short.class);
                return (JsonNode) w.invoke(null, m, version);
            }
        } catch (ReflectiveOperationException e) {
            throw new RuntimeException("json converter for " + m.getClass().getSimpleName() + ": " + e, e);
        }
    }
}
