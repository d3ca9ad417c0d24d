"""Conversations: create one, chat in it (plain and streamed, stored), read it back, list, items."""

from indigo_loadtest.jan import Flow

TITLE = "Test Conversation - indigo-loadtest"
FIRST_MESSAGE = "Hello! What is artificial intelligence?"
SECOND_MESSAGE = "Can you explain machine learning in simple terms?"

flow = Flow("completion-conversation", "conversation", {
    "conversation_time_ms": "p(95)<3000",
    "completion_time_ms": "p(95)<10000",
    "list_conversations_time_ms": "p(95)<3000",
    "conversation_items_time_ms": "p(95)<3000",
})
options = flow.options()


async def default(vu):
    """SINGLE_RUN: the functional flow, every step of the original."""
    flow.banner("CONVERSATION COMPLETION TESTS")
    async with flow.session(vu) as jan:
        conversation = jan and await jan.create_conversation(TITLE)
        if not conversation:
            return
        await flow.pause()
        await jan.conversation_chat(conversation, FIRST_MESSAGE)
        await flow.pause()
        await jan.conversation_chat_stream(conversation, SECOND_MESSAGE)
        await flow.pause()
        await jan.get_conversation(conversation)
        await flow.pause()
        await jan.list_conversations(conversation)
        await flow.pause()
        await jan.conversation_items(conversation)


async def nonstream(vu):
    """Load: a guest opens a conversation, chats once, and reads it back."""
    async with flow.session(vu) as jan:
        conversation = jan and await jan.create_conversation(TITLE)
        if conversation:
            await jan.conversation_chat(conversation, FIRST_MESSAGE)
            await jan.get_conversation(conversation)
            await jan.list_conversations(conversation)
            await jan.conversation_items(conversation)


async def stream(vu):
    """Load: a guest opens a conversation and chats once, streamed."""
    async with flow.session(vu) as jan:
        conversation = jan and await jan.create_conversation(TITLE)
        if conversation:
            await jan.conversation_chat_stream(conversation, SECOND_MESSAGE)
