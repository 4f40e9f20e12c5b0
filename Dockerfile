FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY connectors connectors
COPY schema schema
COPY resolvers resolvers
COPY casework casework
COPY auth auth
COPY sandbox sandbox
RUN pip install --no-cache-dir .
ENV MINSHENG_HOST=0.0.0.0 PORT=8000
EXPOSE 8000
CMD ["minsheng", "up"]
