// A Kotlin peer for the test suite: the message classes of the users' integration guide ("Redis
// Pub/Sub Integration", for Kotlin services on kotlinx.serialization), compiled by the real Kotlin
// compiler with the kotlinx.serialization plugin, encoded and decoded by the real
// kotlinx.serialization runtime with the default `Json` (the guide configures none), over Redis
// Pub/Sub.
//
// Usage (the classpath is this program's jar, kotlin-stdlib and the two kotlinx jars):
//   java -cp ... GuidePeerKt publish HOST PORT CHANNEL
//   java -cp ... GuidePeerKt receive HOST PORT CHANNEL COUNT
//
// Protocol. Every kind below is a Kotlin type, named as in Kotlin ("PresenceMessage",
// "PubSubMessage.Notification"), and has a channel of its own: CHANNEL + "." + KIND. A payload
// on that channel is one JSON text of that kind, encoded or decoded with that type's serializer,
// exactly as `Json.encodeToString<KIND>(value)` and `Json.decodeFromString<KIND>(text)` do: a
// plain class through its own serializer (no discriminator), a sealed class through the sealed
// base (kotlinx writes the discriminator "type" first, holding the member's serial name).
//
// publish: publishes the fixed sample values of `SAMPLES` below, kind by kind in that order, each
//   on its kind's channel, and prints one line per sample to stdout:
//     KIND<TAB>JSON                  the payload, as published
//     ERROR<TAB>KIND<TAB>encode: E   kotlinx refused to encode it (nothing was published)
// receive: subscribes to the channel of every kind, prints READY once Redis has acknowledged all
//   of them, then takes COUNT messages and prints one line per message, in arrival order:
//     KIND<TAB>JSON                  the payload decoded into KIND, encoded again with the same
//                                    serializer
//     ERROR<TAB>KIND<TAB>decode: E   kotlinx refused to decode it; the peer goes on
//     ERROR<TAB>KIND<TAB>encode: E [decoded: VALUE]
//                                    it decoded (VALUE is its toString), but kotlinx refused to
//                                    encode it again
//   E is the exception's simple class name and message, on one line.
// Output is UTF-8. The exit code is 0 unless Redis fails (or stays silent for READ_TIMEOUT_MS):
// then it is 1, with the reason on stderr.
//
// The guide shows no package declaration, so the classes live in the default package: their
// serial names, and so the discriminator values, are the bare class names ("UserOnline",
// "PubSubMessage.Notification"). In a service with `package com.acme.chat` kotlinx would write
// "com.acme.chat.UserOnline" instead.
//
// `Instant` is kotlin.time.Instant from the standard library, which kotlinx.serialization (1.9.0
// on) serializes itself as an ISO-8601 string. kotlinx-datetime's jar is not to be had from the
// registries this project can reach. The guide's `Instant.now()` reads like java.time.Instant,
// which kotlinx cannot serialize at all without a custom serializer: a @Serializable class with a
// java.time.Instant property does not compile ("Serializer has not been found for type 'Instant'").

import java.io.BufferedInputStream
import java.io.BufferedOutputStream
import java.io.ByteArrayOutputStream
import java.io.Closeable
import java.io.FileDescriptor
import java.io.FileOutputStream
import java.io.IOException
import java.io.PrintStream
import java.net.InetSocketAddress
import java.net.Socket
import kotlin.system.exitProcess
import kotlin.time.Instant
import kotlinx.serialization.KSerializer
import kotlinx.serialization.Serializable
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.buildJsonObject
import kotlinx.serialization.json.put

// --- The guide's message classes -----------------------------------------------------------------
// Only PubSubMessage is written out in the guide; it is copied as written. Every other class is
// used there without its declaration: each gets the fields that its use implies, plus those of
// the Python examples (examples/messages.py, actors/chat) where the guide implies none; every
// such choice is marked "implied" or "chosen" below.

// Implied by `NotificationMessage(userId = userId, notification = notification,
// timestamp = Instant.now())` in NotificationPublisher.
@Serializable
data class NotificationMessage(
    val userId: String,
    val notification: Notification,
    val timestamp: Instant,
)

// `type` is implied by `message.notification.type`; `title` is chosen, as in examples/messages.py.
// NotificationService publishes a Notification by itself, as a plain class.
@Serializable
data class Notification(
    val type: String,
    val title: String,
)

// `type` is implied by the channel "events.${event.type}" and `id` by `message.id`.
@Serializable
data class Event(
    val id: String,
    val type: String,
)

// PresenceSystem: `when (message) { is UserOnline -> ...; is UserOffline -> ... }` on a
// PresenceMessage, `UserOnline(userId = userId, presence = UserPresence(...))`,
// `message.userId` in both branches and `message.presence`; `is UserOnline` unqualified, so the
// members are top-level classes. A sealed base without properties: the guide constructs
// UserOnline from userId and presence alone.
@Serializable
sealed class PresenceMessage

@Serializable
data class UserOnline(
    val userId: String,
    val presence: UserPresence,
) : PresenceMessage()

@Serializable
data class UserOffline(
    val userId: String,
) : PresenceMessage()

// Implied by `UserPresence(status = status, lastSeen = Instant.now())`.
@Serializable
data class UserPresence(
    val status: PresenceStatus,
    val lastSeen: Instant,
)

// The constants are chosen, as in examples/messages.py; kotlinx writes an enum by its name.
enum class PresenceStatus { ONLINE, AWAY }

// "Message Structure", as the guide writes it.
@Serializable
sealed class PubSubMessage {
    abstract val id: String
    abstract val timestamp: Instant

    @Serializable
    data class Notification(
        override val id: String,
        override val timestamp: Instant,
        val userId: String,
        val type: String,
        val data: JsonObject
    ) : PubSubMessage()
}

// ChatService publishes a ChatMessage on "chat:$roomId"; the guide shows no field. Chosen: the
// fields of actors.chat.ChatMessage (with the id and timestamp of every actors Message).
@Serializable
data class ChatMessage(
    val id: String,
    val timestamp: Instant,
    val room: String,
    val userId: String,
    val text: String,
    val sentAt: Double,
)

// LiveUpdateService: `when (update) { is DataUpdate ...; is ConfigUpdate ...; is StatusUpdate }`
// on a LiveUpdate, so a sealed class. Chosen: the base follows the guide's "Message Structure"
// (abstract id and timestamp) and the members have the fields of examples/messages.py.
@Serializable
sealed class LiveUpdate {
    abstract val id: String
    abstract val timestamp: Instant
}

@Serializable
data class DataUpdate(
    override val id: String,
    override val timestamp: Instant,
    val key: String,
    val values: List<Double>,
) : LiveUpdate()

@Serializable
data class ConfigUpdate(
    override val id: String,
    override val timestamp: Instant,
    val settings: Map<String, String>,
) : LiveUpdate()

@Serializable
data class StatusUpdate(
    override val id: String,
    override val timestamp: Instant,
    val status: String,
    val healthy: Boolean,
) : LiveUpdate()

// --- Kinds and their fixed samples ---------------------------------------------------------------

/** The serializer of every kind, by the kind's name (kotlin_peer.py lists the same names). */
val KINDS: Map<String, KSerializer<*>> = linkedMapOf(
    "NotificationMessage" to NotificationMessage.serializer(),
    "Notification" to Notification.serializer(),
    "Event" to Event.serializer(),
    "PresenceMessage" to PresenceMessage.serializer(),
    "UserOnline" to UserOnline.serializer(),
    "UserOffline" to UserOffline.serializer(),
    "UserPresence" to UserPresence.serializer(),
    "PubSubMessage" to PubSubMessage.serializer(),
    "PubSubMessage.Notification" to PubSubMessage.Notification.serializer(),
    "ChatMessage" to ChatMessage.serializer(),
    "LiveUpdate" to LiveUpdate.serializer(),
    "DataUpdate" to DataUpdate.serializer(),
    "ConfigUpdate" to ConfigUpdate.serializer(),
    "StatusUpdate" to StatusUpdate.serializer(),
)

val AT: Instant = Instant.parse("2024-05-01T12:30:00Z")
val SEEN: Instant = Instant.parse("2024-05-01T12:29:59.250Z") // a fraction: how is it written?

val NOTIFICATION = Notification(type = "friend-request", title = "Ada wants to connect")
val NOTIFICATION_MESSAGE = NotificationMessage(
    userId = "user-42",
    notification = NOTIFICATION,
    timestamp = AT,
)
val EVENT = Event(id = "e1", type = "deploy")
val PRESENCE = UserPresence(status = PresenceStatus.ONLINE, lastSeen = SEEN)
val ONLINE = UserOnline(userId = "user-42", presence = PRESENCE)
val OFFLINE = UserOffline(userId = "user-42")
val PUBSUB_NOTIFICATION = PubSubMessage.Notification(
    id = "9b1d",
    timestamp = AT,
    userId = "user-42",
    type = "mention",
    data = buildJsonObject { put("post", 7) },
)
// Quotes, a backslash, a newline and non-ASCII letters, to show kotlinx's escaping; a large
// Double, to show that Kotlin writes it in E notation.
val CHAT = ChatMessage(
    id = "m1",
    timestamp = AT,
    room = "rust-fans",
    userId = "user-42",
    text = "Grüße, \"Ada\" \\ ✓\nbye",
    sentAt = 1714566600.5,
)
val DATA = DataUpdate(id = "d1", timestamp = AT, key = "prices", values = listOf(1.5, 2.25, 3.0))
val CONFIG = ConfigUpdate(id = "c1", timestamp = AT, settings = mapOf("theme" to "dark"))
val STATUS = StatusUpdate(id = "s1", timestamp = AT, status = "degraded", healthy = false)

/** What `publish` sends: each kind with its samples, encoded with that kind's serializer. */
val SAMPLES: List<Pair<String, Any>> = listOf(
    "NotificationMessage" to NOTIFICATION_MESSAGE,
    "Notification" to NOTIFICATION,
    "Event" to EVENT,
    "PresenceMessage" to ONLINE,
    "PresenceMessage" to OFFLINE,
    "UserOnline" to ONLINE,
    "UserOffline" to OFFLINE,
    "UserPresence" to PRESENCE,
    "PubSubMessage" to PUBSUB_NOTIFICATION,
    "PubSubMessage.Notification" to PUBSUB_NOTIFICATION,
    "ChatMessage" to CHAT,
    "LiveUpdate" to DATA,
    "LiveUpdate" to CONFIG,
    "LiveUpdate" to STATUS,
    "DataUpdate" to DATA,
    "ConfigUpdate" to CONFIG,
    "StatusUpdate" to STATUS,
)

@Suppress("UNCHECKED_CAST")
fun serializerOf(kind: String): KSerializer<Any> =
    (KINDS[kind] ?: throw IllegalArgumentException("unknown kind $kind")) as KSerializer<Any>

fun encode(kind: String, value: Any): String = Json.encodeToString(serializerOf(kind), value)

fun decode(kind: String, text: String): Any = Json.decodeFromString(serializerOf(kind), text)

fun describe(error: Throwable): String =
    "${error.javaClass.simpleName}: ${error.message}".replace(Regex("\\s*\\n\\s*"), " ")

// --- A minimal Redis client: RESP2 over a socket -------------------------------------------------

const val CONNECT_TIMEOUT_MS = 5_000
const val READ_TIMEOUT_MS = 30_000

class RedisError(message: String) : IOException(message)

class Redis(host: String, port: Int) : Closeable {
    private val socket = Socket()
    private val input: BufferedInputStream
    private val output: BufferedOutputStream

    init {
        socket.connect(InetSocketAddress(host, port), CONNECT_TIMEOUT_MS)
        socket.soTimeout = READ_TIMEOUT_MS
        socket.tcpNoDelay = true
        input = BufferedInputStream(socket.getInputStream())
        output = BufferedOutputStream(socket.getOutputStream())
    }

    /** Sends one command as an array of bulk strings. */
    fun send(vararg args: String) {
        output.write("*${args.size}\r\n".toByteArray())
        for (arg in args) {
            val bytes = arg.toByteArray(Charsets.UTF_8)
            output.write("$${bytes.size}\r\n".toByteArray())
            output.write(bytes)
            output.write("\r\n".toByteArray())
        }
        output.flush()
    }

    /** Reads one reply: String (simple), Long, ByteArray or null (bulk), or List (array). */
    fun read(): Any? {
        val prefix = input.read()
        if (prefix < 0) throw RedisError("connection closed")
        val line = readLine()
        return when (prefix.toChar()) {
            '+' -> line
            '-' -> throw RedisError(line)
            ':' -> line.toLong()
            '$' -> {
                val size = line.toInt()
                if (size < 0) null else readExactly(size).also { readExactly(2) }
            }
            '*' -> {
                val size = line.toInt()
                if (size < 0) null else List(size) { read() }
            }
            else -> throw RedisError("bad reply prefix $prefix")
        }
    }

    private fun readLine(): String {
        val bytes = ByteArrayOutputStream()
        while (true) {
            val byte = input.read()
            if (byte < 0) throw RedisError("connection closed")
            if (byte == '\r'.code) {
                input.read() // '\n'
                return bytes.toString(Charsets.UTF_8)
            }
            bytes.write(byte)
        }
    }

    private fun readExactly(size: Int): ByteArray {
        val bytes = input.readNBytes(size)
        if (bytes.size < size) throw RedisError("connection closed")
        return bytes
    }

    override fun close() = socket.close()
}

// --- The two modes -------------------------------------------------------------------------------

val out = PrintStream(FileOutputStream(FileDescriptor.out), true, "UTF-8")

fun publish(redis: Redis, channel: String) {
    for ((kind, value) in SAMPLES) {
        val payload = try {
            encode(kind, value)
        } catch (error: Exception) {
            out.println("ERROR\t$kind\tencode: ${describe(error)}")
            continue
        }
        redis.send("PUBLISH", "$channel.$kind", payload)
        redis.read()
        out.println("$kind\t$payload")
    }
}

fun receive(redis: Redis, channel: String, count: Int) {
    val channels = KINDS.keys.map { "$channel.$it" }
    redis.send("SUBSCRIBE", *channels.toTypedArray())
    repeat(channels.size) { redis.read() }
    out.println("READY")
    repeat(count) {
        val frame = redis.read() as List<*> // [message, channel, payload]: nothing else comes
        val kind = String(frame[1] as ByteArray, Charsets.UTF_8).removePrefix("$channel.")
        val text = String(frame[2] as ByteArray, Charsets.UTF_8)
        val line = try {
            val value = decode(kind, text)
            try {
                "$kind\t${encode(kind, value)}"
            } catch (error: Exception) {
                "ERROR\t$kind\tencode: ${describe(error)} [decoded: $value]"
            }
        } catch (error: Exception) {
            "ERROR\t$kind\tdecode: ${describe(error)}"
        }
        out.println(line)
    }
}

fun main(args: Array<String>) {
    val usage = "usage: publish HOST PORT CHANNEL | receive HOST PORT CHANNEL COUNT"
    val mode = args.getOrNull(0)
    if (mode !in setOf("publish", "receive") || args.size != (if (mode == "publish") 4 else 5)) {
        System.err.println(usage)
        exitProcess(2)
    }
    try {
        Redis(args[1], args[2].toInt()).use { redis ->
            when (mode) {
                "publish" -> publish(redis, args[3])
                else -> receive(redis, args[3], args[4].toInt())
            }
        }
    } catch (error: IOException) {
        System.err.println("redis: ${describe(error)}")
        exitProcess(1)
    }
}
